//! The journal's on-disk format and its recovery scan. Pure: bytes in, records out.
//!
//! # Format
//!
//! ```text
//! file   = MAGIC record*
//! MAGIC  = "TITANIC" 0x01                  (8 bytes; the last byte is the format version)
//! record = len:u32-le crc:u32-le payload   (payload is `len` bytes)
//! crc    = CRC-32 (IEEE) of the 4 len bytes followed by the payload
//! payload= MessagePack of a `Record`       (serde + rmp-serde)
//! ```
//!
//! The checksum covers the length too, so a corrupted length is caught as surely as a
//! corrupted payload.
//!
//! The file may end in zeros: the writer extends it ahead of time with zero-filled space
//! (preallocation), because overwriting blocks that already exist lets `fdatasync` skip the
//! file-system metadata commit that every append would need. A length of zero is never a
//! valid record, so the data ends where a run of zeros reaching the end of the file begins.
//!
//! # Recovery
//!
//! The journal is only ever appended to, so a crash can leave at most one incomplete record at
//! the end (a *torn tail*): the writer acknowledges nothing until its bytes are synced, so
//! dropping a torn tail loses nothing anyone was promised. [`scan`] reads every record it can
//! and reports each stretch of bytes it could not read as a [`Damage`].
//!
//! A bad record *in the middle* (a flipped bit on disk, a bad sector) is different: intact,
//! acknowledged records follow it. The policy is **keep every intact record**: the scan skips the
//! bad stretch and goes on with the next valid record. If the bad record's length field is
//! plausible and a valid record (or the end of the file) follows exactly where it says, that is
//! where the scan resumes; otherwise it searches byte by byte for the next offset where a
//! complete record with a matching checksum decodes. Only if none follows is the rest of the
//! file treated as a torn tail. (A record found by that search could in theory be a journal
//! record embedded *inside* a stored message body; it would need a valid CRC-32 at exactly that
//! offset, which is why the length-guided resume is tried first.)
//!
//! Recovery takes time linear in the file's size, whatever the damage (garbage, runs of
//! plausible-looking lengths, bad frames between valid records, a torn tail). From the first bad
//! frame on, a frame's checksum is derived from prefix checksums of the image (CRC-32 is affine;
//! the private `crc` module) instead of being computed over the bytes the frame claims: a
//! candidate costs the same whether it claims 10 bytes or 64 MiB, every byte is read once for
//! checksums, and only a candidate whose checksum matches is decoded. An intact journal is read
//! exactly as before.

mod crc;
#[cfg(test)]
mod large_damage;

use crate::protocol::RequestId;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The first 8 bytes of every journal file: a name and a format version.
pub const MAGIC: &[u8; 8] = b"TITANIC\x01";

/// Bytes in front of every payload: its length and its checksum.
pub const FRAME_HEADER: usize = 8;

/// Largest payload accepted (64 MiB). Larger requests are refused with `400`; a larger length
/// field on disk is corruption.
pub const MAX_PAYLOAD: usize = 64 << 20;

/// One event in the life of a request. The journal is a sequence of these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// A client's request was accepted (before its `200 <uuid>` is sent).
    Request {
        /// The UUID the client got.
        id: RequestId,
        /// The service to forward the request to.
        service: Bytes,
        /// The frames to forward.
        body: Vec<Bytes>,
        /// The client's request id ([`majordomo::rid`]), if it sent one: a retried
        /// `titanic.request` with this id gets `id` again instead of a second request.
        ///
        /// Format compatibility: a record is a MessagePack array of its fields, and this field
        /// is written only when present, so a request without one is byte-for-byte the record
        /// journals held before request ids existed; reading such a record (three fields) gives
        /// `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<Bytes>,
    },
    /// The service's reply to a request arrived.
    Reply {
        /// The request answered.
        id: RequestId,
        /// The reply frames.
        body: Vec<Bytes>,
    },
    /// The client closed the request: forget it and its reply.
    Close {
        /// The request closed.
        id: RequestId,
    },
}

impl Record {
    /// The request this record is about.
    pub fn id(&self) -> RequestId {
        match self {
            Record::Request { id, .. } | Record::Reply { id, .. } | Record::Close { id } => *id,
        }
    }

    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Record::Request { .. } => "request",
            Record::Reply { .. } => "reply",
            Record::Close { .. } => "close",
        }
    }
}

/// Why a record could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The encoded record is larger than [`MAX_PAYLOAD`].
    #[error("record of {0} bytes exceeds the {MAX_PAYLOAD}-byte limit")]
    TooLarge(usize),
    /// serde could not encode the record (should not happen for our types).
    #[error("cannot encode record: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    /// The file does not start with [`MAGIC`]: it is not a Titanic journal (or a newer version).
    #[error("not a Titanic journal (bad magic {0:02X?})")]
    NotAJournal(Vec<u8>),
}

/// Appends one framed record to `out`; returns the frame's size in bytes.
pub fn encode(record: &Record, out: &mut Vec<u8>) -> Result<usize, FormatError> {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER]);
    if let Err(e) = rmp_serde::encode::write(out, record) {
        out.truncate(start);
        return Err(e.into());
    }
    let payload = out.len() - start - FRAME_HEADER;
    if payload > MAX_PAYLOAD {
        out.truncate(start);
        return Err(FormatError::TooLarge(payload));
    }
    let len = (payload as u32).to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len);
    crc.update(&out[start + FRAME_HEADER..]);
    out[start..start + 4].copy_from_slice(&len);
    out[start + 4..start + 8].copy_from_slice(&crc.finalize().to_le_bytes());
    Ok(out.len() - start)
}

/// Why the bytes at some offset are not a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameFault {
    /// The file ends inside the header or the payload.
    Truncated,
    /// The length field is zero or larger than [`MAX_PAYLOAD`].
    BadLength(u32),
    /// The checksum does not match.
    Checksum,
    /// The checksum matches but the payload is not a record (or has bytes left over).
    Decode(String),
}

impl fmt::Display for FrameFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameFault::Truncated => f.write_str("incomplete record"),
            FrameFault::BadLength(n) => write!(f, "impossible length {n}"),
            FrameFault::Checksum => f.write_str("checksum mismatch"),
            FrameFault::Decode(e) => write!(f, "undecodable record ({e})"),
        }
    }
}

/// Reads the record framed at the start of `bytes`; returns it and its frame size.
pub fn decode_frame(bytes: &[u8]) -> Result<(Record, usize), FrameFault> {
    let (len, crc) = header(bytes)?;
    let end = FRAME_HEADER + len;
    let payload = bytes.get(FRAME_HEADER..end).ok_or(FrameFault::Truncated)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&bytes[..4]);
    hasher.update(payload);
    if hasher.finalize() != crc {
        return Err(FrameFault::Checksum);
    }
    Ok((decode_payload(payload)?, end))
}

/// The payload length (within the limits) and the checksum at the start of a frame.
fn header(bytes: &[u8]) -> Result<(usize, u32), FrameFault> {
    let header = bytes.get(..FRAME_HEADER).ok_or(FrameFault::Truncated)?;
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    if len == 0 || len as usize > MAX_PAYLOAD {
        return Err(FrameFault::BadLength(len));
    }
    Ok((len as usize, crc))
}

/// The record a checksummed payload holds: all of the payload, nothing left over.
fn decode_payload(payload: &[u8]) -> Result<Record, FrameFault> {
    let mut rest = payload;
    let record = Record::deserialize(&mut rmp_serde::Deserializer::new(&mut rest))
        .map_err(|e| FrameFault::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameFault::Decode(format!("{} trailing bytes", rest.len())));
    }
    Ok(record)
}

/// A stretch of the file the scan could not read and dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// File offset of the first dropped byte.
    pub offset: u64,
    /// Number of bytes dropped.
    pub bytes: u64,
    /// What was wrong with the first of them.
    pub fault: FrameFault,
    /// True if nothing readable follows: a torn tail (normal after a crash), not mid-file damage.
    pub tail: bool,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.tail {
            "torn tail"
        } else {
            "corrupt stretch"
        };
        write!(
            f,
            "dropped {what} of {} bytes at offset {} ({})",
            self.bytes, self.offset, self.fault
        )
    }
}

/// A record found by the scan, with where it sits in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// File offset of the frame.
    pub offset: u64,
    /// Frame size (header + payload).
    pub size: u64,
    /// The record.
    pub record: Record,
}

/// Everything a scan of a journal image learned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Every intact record, in file order.
    pub records: Vec<Found>,
    /// Every stretch dropped, in file order.
    pub damage: Vec<Damage>,
    /// The file has no complete header (empty, or torn while being created): write one.
    pub needs_header: bool,
    /// Where the last intact record ends: the length to truncate a torn tail to.
    pub end: u64,
    /// Zero bytes after the data (preallocated space, not damage).
    pub preallocated: u64,
}

impl Scan {
    /// True if something other than a torn tail was dropped: the file needs rewriting.
    pub fn damaged_mid_file(&self) -> bool {
        self.damage.iter().any(|d| !d.tail)
    }
}

/// Scans a whole journal image. Fails only if it is not a journal at all.
pub fn scan(image: &[u8]) -> Result<Scan, FormatError> {
    let mut scan = Scan::default();
    if image.len() < MAGIC.len() {
        if !MAGIC.starts_with(image) {
            return Err(FormatError::NotAJournal(image.to_vec()));
        }
        scan.needs_header = true;
        if !image.is_empty() {
            scan.damage.push(Damage {
                offset: 0,
                bytes: image.len() as u64,
                fault: FrameFault::Truncated,
                tail: true,
            });
        }
        return Ok(scan);
    }
    if &image[..MAGIC.len()] != MAGIC {
        return Err(FormatError::NotAJournal(image[..MAGIC.len()].to_vec()));
    }
    let mut frames = Frames::new(image);
    let mut pos = MAGIC.len();
    scan.end = pos as u64;
    while pos < image.len() {
        // Linear overall: a record's length field has a non-zero byte among its first four, and
        // a run of zeros before a bad frame is part of the stretch the scan then skips.
        if image[pos..].iter().all(|&b| b == 0) {
            scan.preallocated = (image.len() - pos) as u64;
            break;
        }
        match frames.decode_at(pos) {
            Ok((record, size)) => {
                scan.records.push(Found {
                    offset: pos as u64,
                    size: size as u64,
                    record,
                });
                pos += size;
                scan.end = pos as u64;
            }
            Err(fault) => {
                frames.index_from(pos);
                let resume = resume_after(&mut frames, pos);
                // A torn tail is reported without the preallocated zeros after it (this runs
                // once: nothing follows a torn tail).
                let stop = resume.unwrap_or_else(|| {
                    image
                        .iter()
                        .rposition(|&b| b != 0)
                        .map_or(pos, |last| last + 1)
                });
                scan.damage.push(Damage {
                    offset: pos as u64,
                    bytes: (stop - pos) as u64,
                    fault,
                    tail: resume.is_none(),
                });
                pos = resume.unwrap_or(image.len());
            }
        }
    }
    Ok(scan)
}

/// Where to go on after a bad frame at `bad`: the next offset where a valid record starts, or
/// `None` if no valid record follows (a torn tail).
fn resume_after(frames: &mut Frames, bad: usize) -> Option<usize> {
    let image = frames.image;
    // First trust the length field: a flipped payload byte leaves it intact.
    if let Some(header) = image.get(bad..bad + FRAME_HEADER) {
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let next = bad + FRAME_HEADER + len;
        if len > 0 && len <= MAX_PAYLOAD && next < image.len() && frames.decode_at(next).is_ok() {
            return Some(next);
        }
    }
    (bad + 1..image.len().saturating_sub(FRAME_HEADER)).find(|&at| frames.decode_at(at).is_ok())
}

/// The image being scanned, able to check a frame at any offset in about constant time once
/// damage has been seen.
struct Frames<'a> {
    image: &'a [u8],
    /// Prefix checksums of `image[base..]`, from the first bad frame on: an intact journal is
    /// read exactly as [`decode_frame`] reads it, with no extra pass over its bytes.
    prefix: Option<(usize, crc::Prefix<'a>)>,
}

impl<'a> Frames<'a> {
    fn new(image: &'a [u8]) -> Self {
        Frames {
            image,
            prefix: None,
        }
    }

    /// From now on, frames (all at or after `base`) are checked through prefix checksums.
    fn index_from(&mut self, base: usize) {
        if self.prefix.is_none() {
            self.prefix = Some((base, crc::Prefix::new(&self.image[base..])));
        }
    }

    /// `decode_frame(&image[at..])`, but once indexed the checksum does not read the payload:
    /// a candidate claiming 64 MiB costs what one claiming 10 bytes does, and only a payload
    /// whose checksum matches is decoded (read).
    fn decode_at(&mut self, at: usize) -> Result<(Record, usize), FrameFault> {
        let bytes = &self.image[at..];
        let Some((base, prefix)) = &mut self.prefix else {
            return decode_frame(bytes);
        };
        let (len, crc) = header(bytes)?;
        let end = FRAME_HEADER + len;
        let payload = bytes.get(FRAME_HEADER..end).ok_or(FrameFault::Truncated)?;
        let from = at - *base + FRAME_HEADER;
        if prefix.crc_after(crc32fast::hash(&bytes[..4]), from..from + len) != crc {
            return Err(FrameFault::Checksum);
        }
        Ok((decode_payload(payload)?, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::rng::Rng;

    fn id(n: u8) -> RequestId {
        RequestId::from_bytes([n; 16])
    }

    fn request(n: u8) -> Record {
        Record::Request {
            id: id(n),
            service: Bytes::from("echo"),
            body: vec![
                Bytes::from(format!("hello {n}")),
                Bytes::from_static(&[0, 255]),
            ],
            key: None,
        }
    }

    /// `Record` as it was before request ids: journals written then must still read.
    #[derive(Serialize)]
    enum OldRecord {
        Request {
            id: RequestId,
            service: Bytes,
            body: Vec<Bytes>,
        },
    }

    #[test]
    fn journals_written_before_request_ids_still_read_and_keyless_records_are_unchanged() {
        let old = OldRecord::Request {
            id: id(7),
            service: Bytes::from("echo"),
            body: vec![Bytes::from("x")],
        };
        let old_bytes = rmp_serde::to_vec(&old).unwrap();
        let read: Record = rmp_serde::from_slice(&old_bytes).unwrap();
        assert_eq!(
            read,
            Record::Request {
                id: id(7),
                service: Bytes::from("echo"),
                body: vec![Bytes::from("x")],
                key: None,
            }
        );
        assert_eq!(
            rmp_serde::to_vec(&read).unwrap(),
            old_bytes,
            "same bytes as before"
        );
        let keyed = Record::Request {
            id: id(7),
            service: Bytes::from("echo"),
            body: vec![Bytes::from("x")],
            key: Some(Bytes::from("00000000deadbeef-1")),
        };
        let mut out = MAGIC.to_vec();
        encode(&keyed, &mut out).unwrap();
        assert_eq!(decode_frame(&out[MAGIC.len()..]).unwrap().0, keyed);
    }

    fn image(records: &[Record]) -> (Vec<u8>, Vec<usize>) {
        let mut out = MAGIC.to_vec();
        let mut offsets = Vec::new();
        for r in records {
            offsets.push(out.len());
            encode(r, &mut out).unwrap();
        }
        (out, offsets)
    }

    fn ids(scan: &Scan) -> Vec<Record> {
        scan.records.iter().map(|f| f.record.clone()).collect()
    }

    #[test]
    fn records_round_trip_and_frames_are_compact() {
        let records = vec![
            request(1),
            Record::Reply {
                id: id(1),
                body: vec![Bytes::from("hi")],
            },
            Record::Close { id: id(1) },
        ];
        let (img, _) = image(&records);
        let scan = scan(&img).unwrap();
        assert_eq!(ids(&scan), records);
        assert!(scan.damage.is_empty());
        assert!(!scan.needs_header);
        assert_eq!(scan.end, img.len() as u64);
        // Bytes go out as MessagePack bin, not arrays of integers: a close is tiny.
        assert!(scan.records[2].size < 40, "{}", scan.records[2].size);
    }

    #[test]
    fn empty_and_torn_headers_need_a_header() {
        let s = scan(b"").unwrap();
        assert!(s.needs_header && s.damage.is_empty());
        let s = scan(b"TITA").unwrap();
        assert!(s.needs_header);
        assert_eq!(s.damage.len(), 1);
        assert!(matches!(
            scan(b"hello world"),
            Err(FormatError::NotAJournal(_))
        ));
        assert!(matches!(scan(b"xy"), Err(FormatError::NotAJournal(_))));
    }

    #[test]
    fn every_cut_of_the_last_record_is_a_torn_tail() {
        let (img, offsets) = image(&[request(1), request(2), request(3)]);
        let last = offsets[2];
        for cut in last + 1..img.len() {
            let s = scan(&img[..cut]).unwrap();
            assert_eq!(ids(&s), vec![request(1), request(2)], "cut at {cut}");
            assert_eq!(s.end, last as u64);
            assert_eq!(s.damage.len(), 1);
            let d = &s.damage[0];
            // Trailing zero bytes (high bytes of the length) count as free space.
            assert!(d.tail && d.offset == last as u64, "{d:?}");
            assert!(d.bytes > 0 && d.bytes <= (cut - last) as u64, "{d:?}");
            assert!(!s.damaged_mid_file());
        }
    }

    #[test]
    fn a_flipped_byte_anywhere_drops_only_its_record() {
        let records: Vec<_> = (1..=4).map(request).collect();
        let (img, offsets) = image(&records);
        for at in MAGIC.len()..img.len() {
            let mut bad = img.clone();
            bad[at] ^= 0x40;
            let s = scan(&bad).unwrap();
            let hit = offsets.iter().rposition(|&o| o <= at).unwrap();
            let mut expected = records.clone();
            expected.remove(hit);
            assert_eq!(ids(&s), expected, "flip at {at}");
            assert_eq!(s.damage.len(), 1, "flip at {at}");
            let d = &s.damage[0];
            assert_eq!(d.offset, offsets[hit] as u64);
            assert_eq!(d.tail, hit == records.len() - 1);
        }
    }

    #[test]
    fn garbage_between_records_is_skipped() {
        let (mut img, offsets) = image(&[request(1)]);
        img.extend_from_slice(&[0xEE; 37]);
        let before = img.len();
        encode(&request(2), &mut img).unwrap();
        let s = scan(&img).unwrap();
        assert_eq!(ids(&s), vec![request(1), request(2)]);
        assert_eq!(s.damage.len(), 1);
        assert_eq!(s.damage[0].bytes, 37);
        assert!(s.damaged_mid_file());
        assert_eq!(s.records[1].offset, before as u64);
        assert!(offsets[0] < before);
    }

    #[test]
    fn zeros_after_the_data_are_preallocated_space_not_damage() {
        let (mut img, _) = image(&[request(1)]);
        let end = img.len();
        img.extend_from_slice(&[0; 100]);
        let s = scan(&img).unwrap();
        assert_eq!(ids(&s), vec![request(1)]);
        assert_eq!((s.end, s.preallocated), (end as u64, 100));
        assert!(s.damage.is_empty());
        // A record torn while being written into preallocated space: reported without the
        // zeros after it.
        let mut torn = img.clone();
        let mut extra = Vec::new();
        encode(&request(2), &mut extra).unwrap();
        torn[end..end + 20].copy_from_slice(&extra[..20]);
        let s = scan(&torn).unwrap();
        assert_eq!(ids(&s), vec![request(1)]);
        assert_eq!(s.end, end as u64);
        assert_eq!(s.damage.len(), 1);
        assert!(s.damage[0].tail);
        assert!(s.damage[0].bytes <= 20, "{:?}", s.damage[0]);
        // Zeros in the middle, then data: damage, and the data after it is kept.
        let (mut gap, _) = image(&[request(1)]);
        gap.extend_from_slice(&[0; 30]);
        encode(&request(3), &mut gap).unwrap();
        let s = scan(&gap).unwrap();
        assert_eq!(ids(&s), vec![request(1), request(3)]);
        assert_eq!(s.damage[0].fault, FrameFault::BadLength(0));
        assert!(!s.damage[0].tail);
    }

    #[test]
    fn checksummed_garbage_that_is_no_record_is_rejected() {
        let mut img = MAGIC.to_vec();
        let payload = [0xC0u8; 5]; // five MessagePack nils
        img.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        let mut h = crc32fast::Hasher::new();
        h.update(&(payload.len() as u32).to_le_bytes());
        h.update(&payload);
        img.extend_from_slice(&h.finalize().to_le_bytes());
        img.extend_from_slice(&payload);
        let s = scan(&img).unwrap();
        assert!(s.records.is_empty());
        assert!(matches!(s.damage[0].fault, FrameFault::Decode(_)));
    }

    #[test]
    fn oversized_records_are_refused() {
        let huge = Record::Reply {
            id: id(9),
            body: vec![Bytes::from(vec![7u8; MAX_PAYLOAD])],
        };
        let mut out = vec![1, 2, 3];
        assert!(matches!(
            encode(&huge, &mut out),
            Err(FormatError::TooLarge(_))
        ));
        assert_eq!(out, [1, 2, 3]);
    }

    /// The scan before prefix checksums, kept verbatim as the reference for what the scan must
    /// find: it reads each candidate's claimed payload, so it is only usable on small images.
    fn reference_scan(image: &[u8]) -> Result<Scan, FormatError> {
        fn resume_after(image: &[u8], bad: usize) -> Option<usize> {
            let valid_at = |at: usize| decode_frame(&image[at..]).is_ok();
            if let Some(header) = image.get(bad..bad + FRAME_HEADER) {
                let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
                let next = bad + FRAME_HEADER + len;
                if len > 0 && len <= MAX_PAYLOAD && next < image.len() && valid_at(next) {
                    return Some(next);
                }
            }
            (bad + 1..image.len().saturating_sub(FRAME_HEADER)).find(|&at| valid_at(at))
        }
        let mut scan = Scan::default();
        if image.len() < MAGIC.len() {
            if !MAGIC.starts_with(image) {
                return Err(FormatError::NotAJournal(image.to_vec()));
            }
            scan.needs_header = true;
            if !image.is_empty() {
                scan.damage.push(Damage {
                    offset: 0,
                    bytes: image.len() as u64,
                    fault: FrameFault::Truncated,
                    tail: true,
                });
            }
            return Ok(scan);
        }
        if &image[..MAGIC.len()] != MAGIC {
            return Err(FormatError::NotAJournal(image[..MAGIC.len()].to_vec()));
        }
        let mut pos = MAGIC.len();
        scan.end = pos as u64;
        while pos < image.len() {
            if image[pos..].iter().all(|&b| b == 0) {
                scan.preallocated = (image.len() - pos) as u64;
                break;
            }
            match decode_frame(&image[pos..]) {
                Ok((record, size)) => {
                    scan.records.push(Found {
                        offset: pos as u64,
                        size: size as u64,
                        record,
                    });
                    pos += size;
                    scan.end = pos as u64;
                }
                Err(fault) => {
                    let resume = resume_after(image, pos);
                    let stop = resume.unwrap_or_else(|| {
                        image
                            .iter()
                            .rposition(|&b| b != 0)
                            .map_or(pos, |last| last + 1)
                    });
                    scan.damage.push(Damage {
                        offset: pos as u64,
                        bytes: (stop - pos) as u64,
                        fault,
                        tail: resume.is_none(),
                    });
                    pos = resume.unwrap_or(image.len());
                }
            }
        }
        Ok(scan)
    }

    /// Bytes that are often small, so that many windows of them read as plausible lengths.
    fn bytes_for(rng: &mut Rng, n: usize) -> Vec<u8> {
        let small = rng.below(2) == 0;
        (0..n)
            .map(|_| {
                let b = rng.next_u64() as u8;
                if small {
                    b % 4
                } else {
                    b
                }
            })
            .collect()
    }

    /// Twenty-odd records of every kind and of varied sizes; one body holds a whole encoded
    /// record, which the byte-by-byte search may find (the reason the length-guided resume goes
    /// first).
    fn random_records(rng: &mut Rng) -> Vec<Record> {
        (0..20 + rng.below(10))
            .map(|n| {
                let id = RequestId::from_bytes([n as u8; 16]);
                let size = match rng.below(10) {
                    0 => 2000 + rng.below(3000),
                    _ => rng.below(200),
                } as usize;
                let mut body = bytes_for(rng, size);
                if n == 7 {
                    encode(&Record::Close { id }, &mut body).unwrap();
                }
                match rng.below(4) {
                    0 => Record::Reply {
                        id,
                        body: vec![Bytes::from(body)],
                    },
                    1 => Record::Close { id },
                    k => Record::Request {
                        id,
                        service: Bytes::from("echo"),
                        body: vec![Bytes::from(body), Bytes::new()],
                        key: (k == 3).then(|| Bytes::from(format!("key-{n}"))),
                    },
                }
            })
            .collect()
    }

    /// A frame header claiming a plausible length that ends at (or just off) a record start
    /// after `at`, with a made-up checksum.
    fn lying_header(rng: &mut Rng, at: usize, offsets: &[usize], exact: bool) -> [u8; 8] {
        let ahead: Vec<usize> = offsets
            .iter()
            .copied()
            .filter(|&o| o > at + FRAME_HEADER + 3)
            .collect();
        let target = ahead
            .get(rng.below(ahead.len() as u64) as usize)
            .copied()
            .unwrap_or(at + 100);
        let shortfall = if exact { 0 } else { rng.below(4) as usize };
        let len = (target - shortfall - at - FRAME_HEADER) as u32;
        let mut header = [0; 8];
        header[..4].copy_from_slice(&len.to_le_bytes());
        header[4..].copy_from_slice(&(rng.next_u64() as u32).to_le_bytes());
        header
    }

    /// Damages `img` in one of the ways a disk, a crash or a forger can.
    fn damage(img: &mut Vec<u8>, offsets: &[usize], rng: &mut Rng) {
        let n = img.len();
        if n <= MAGIC.len() + FRAME_HEADER {
            return;
        }
        let at = MAGIC.len() + rng.below((n - MAGIC.len()) as u64) as usize;
        // Record starts still inside the image (an earlier damage may have cut it).
        let mut offsets: Vec<usize> = offsets
            .iter()
            .copied()
            .filter(|&o| o + FRAME_HEADER <= n)
            .collect();
        if offsets.is_empty() {
            offsets.push(n - FRAME_HEADER);
        }
        let offsets = &offsets[..];
        let run = (1 + rng.below(300) as usize).min(n - at);
        match rng.below(9) {
            0 => img[at] ^= 1 << rng.below(8),
            1 => {
                let garbage = bytes_for(rng, run);
                img[at..at + run].copy_from_slice(&garbage);
            }
            2 => img[at..at + run].fill(0),
            3 => img.truncate(at),
            4 => img.extend(std::iter::repeat_n(0, rng.below(500) as usize)),
            // Lying headers, alone or in a run, at a record start or anywhere.
            5 | 6 => {
                let start = if rng.below(2) == 0 {
                    offsets[rng.below(offsets.len() as u64) as usize]
                } else {
                    at
                };
                for k in 0..1 + rng.below(40) as usize {
                    let h = start + 8 * k;
                    if h + 8 > n {
                        break;
                    }
                    let exact = rng.below(3) == 0;
                    let header = lying_header(rng, h, offsets, exact);
                    img[h..h + 8].copy_from_slice(&header);
                }
            }
            // A frame whose checksum matches but whose payload is no record.
            7 => {
                let mut frame = 9u32.to_le_bytes().to_vec();
                let payload = bytes_for(rng, 9);
                let mut h = crc32fast::Hasher::new();
                h.update(&frame);
                h.update(&payload);
                frame.extend_from_slice(&h.finalize().to_le_bytes());
                frame.extend_from_slice(&payload);
                let o = offsets[rng.below(offsets.len() as u64) as usize];
                let end = (o + frame.len()).min(n);
                img[o..end].copy_from_slice(&frame[..end - o]);
            }
            // A record's length made plausible but wrong.
            _ => {
                let o = offsets[rng.below(offsets.len() as u64) as usize];
                let len = 1 + rng.below(n as u64) as u32;
                img[o..o + 4].copy_from_slice(&len.to_le_bytes());
            }
        }
    }

    #[test]
    fn the_scan_finds_exactly_what_the_byte_by_byte_reference_finds() {
        let mut rng = Rng::seeded(11);
        let mut damaged_mid_file = 0;
        for round in 0..4000 {
            let (mut img, offsets) = image(&random_records(&mut rng));
            for _ in 0..1 + rng.below(3) {
                damage(&mut img, &offsets, &mut rng);
            }
            let expected = reference_scan(&img).unwrap();
            assert_eq!(scan(&img).unwrap(), expected, "round {round}");
            damaged_mid_file += usize::from(expected.damaged_mid_file());
        }
        // The damage generator does reach the interesting cases.
        assert!(damaged_mid_file > 2000, "{damaged_mid_file}");
    }

    #[test]
    fn a_frame_checked_through_prefix_checksums_reads_as_decode_frame_reads_it() {
        let mut rng = Rng::seeded(12);
        for _ in 0..40 {
            let (mut img, offsets) = image(&random_records(&mut rng));
            damage(&mut img, &offsets, &mut rng);
            let base =
                MAGIC.len() + rng.below(img.len().saturating_sub(MAGIC.len()) as u64) as usize;
            let mut frames = Frames::new(&img);
            frames.index_from(base);
            // Questions in file order and back again.
            for at in (base..img.len()).chain((base..img.len()).rev()) {
                assert_eq!(frames.decode_at(at), decode_frame(&img[at..]), "at {at}");
            }
        }
    }
}
