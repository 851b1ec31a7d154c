//! Large damaged journals: every intact record is found and the damage reported, in time linear
//! in the image's size whatever the damage. (The scan used to CRC each candidate's claimed
//! length at every offset after a bad record. Measured in a release build: random bytes in a
//! 256 MiB journal took 41 s, lying headers between records 157 s, plausible lengths 251 s in
//! 64 MiB and more than 10 minutes in 128 MiB.)
//!
//! Each case builds a 256 MiB image (`TITANIC_RECOVERY_MIB` MiB if set), damages 1 MiB in its
//! middle and prints the time the scan took: about 0.2 s in a release build, 1 to 1.5 s in a
//! debug one, with about 550 MB of memory per case. The release figures:
//!
//! ```text
//! cargo test --release -p titanic --lib journal::large_damage -- --nocapture --test-threads 1
//! ```

use super::*;
use common::rng::Rng;
use std::ops::Range;
use std::time::{Duration, Instant};

const MIB: usize = 1 << 20;

/// Far above what the scan needs (under a second for 256 MiB in a release build): the bound is
/// there to catch a scan that is quadratic again, which takes hours, not to time it.
const BOUND: Duration = Duration::from_secs(30);

/// How much is damaged, in the middle of the image.
const DAMAGE: usize = MIB;

fn image_size() -> usize {
    let mib = std::env::var("TITANIC_RECOVERY_MIB").map_or(256, |v| {
        v.parse().expect("TITANIC_RECOVERY_MIB: a number of MiB")
    });
    mib * MIB
}

/// A journal image and where each of its frames is: `(offset, size)`.
struct Journal {
    image: Vec<u8>,
    frames: Vec<(usize, usize)>,
}

impl Journal {
    /// About `size` bytes of records: mostly small, some of tens of KiB, a few of several MiB
    /// (at most an eighth of `size`, so that intact records follow a damaged middle). Bodies
    /// are runs of one byte, some of them small enough (1 to 3) that every window of four reads
    /// as a plausible length.
    fn build(size: usize, rng: &mut Rng) -> Self {
        let mut image = MAGIC.to_vec();
        let mut frames = Vec::new();
        let mut n: u32 = 0;
        while image.len() < size {
            let body_len = match rng.below(1000) {
                0..900 => 16 + rng.below(1000),
                900..998 => 1024 + rng.below(128 << 10),
                _ => ((1 << 20) + rng.below(7 << 20)).min(size as u64 / 8),
            } as usize;
            let body = Bytes::from(vec![(n % 250 + 1) as u8; body_len]);
            let id = RequestId::from_bytes(u128::from(n).to_le_bytes());
            let record = match n % 10 {
                0..7 => Record::Request {
                    id,
                    service: Bytes::from("echo"),
                    body: vec![body],
                    key: None,
                },
                7 | 8 => Record::Reply {
                    id,
                    body: vec![body],
                },
                _ => Record::Close { id },
            };
            let offset = image.len();
            let size = encode(&record, &mut image).unwrap();
            frames.push((offset, size));
            n += 1;
        }
        Journal { image, frames }
    }

    /// Index of the first frame that starts at or after `at`.
    fn first_from(&self, at: usize) -> usize {
        self.frames.partition_point(|&(offset, _)| offset < at)
    }

    /// Where 1 MiB of damage starts: inside the payload of a small record past the middle, so
    /// the scan must search through all of the damage (a length-guided jump cannot skip it).
    fn damage_start(&self) -> usize {
        let mut i = self.first_from(self.image.len() / 2);
        while self.frames[i].1 > 64 << 10 {
            i += 1;
        }
        let (offset, size) = self.frames[i];
        offset + size / 2
    }

    /// A frame header at `at` whose length is plausible and ends at the start of an intact
    /// record (one starting at or after `intact`), or up to three bytes before one (`exact:
    /// false`). The checksum field's bytes are all below 4, so most windows straddling two such
    /// headers read as plausible lengths too.
    fn lying_header(&self, at: usize, intact: usize, rng: &mut Rng, exact: bool) -> [u8; 8] {
        let first = self.first_from(intact.max(at + FRAME_HEADER + 4));
        let last = self
            .first_from(at + FRAME_HEADER + MAX_PAYLOAD)
            .min(self.frames.len());
        let (target, _) = self.frames[first + rng.below((last - first) as u64) as usize];
        let short = if exact { 0 } else { 1 + rng.below(3) as usize };
        let len = (target - short - at - FRAME_HEADER) as u32;
        let mut header = [0; 8];
        header[..4].copy_from_slice(&len.to_le_bytes());
        for b in &mut header[4..] {
            *b = rng.below(4) as u8;
        }
        header
    }
}

/// What a scan must find: frames (offset, size) and damaged stretches (offset, bytes).
struct Expected {
    records: Vec<(usize, usize)>,
    damage: Vec<(usize, usize)>,
}

/// Scans `image`, checks it found exactly what was expected, and prints how long it took.
fn recover(case: &str, image: &[u8], expected: &Expected) {
    let started = Instant::now();
    let scan = scan(image).unwrap();
    let took = started.elapsed();
    println!(
        "{case}: {:.1} MiB journal recovered in {:.3} s ({} records, {} damaged stretches)",
        image.len() as f64 / MIB as f64,
        took.as_secs_f64(),
        scan.records.len(),
        scan.damage.len()
    );
    let found: Vec<(usize, usize)> = scan
        .records
        .iter()
        .map(|f| (f.offset as usize, f.size as usize))
        .collect();
    assert!(found == expected.records, "{case}: wrong records");
    let damage: Vec<(usize, usize)> = scan
        .damage
        .iter()
        .map(|d| (d.offset as usize, d.bytes as usize))
        .collect();
    assert_eq!(damage, expected.damage, "{case}");
    assert!(
        scan.damage.iter().all(|d| !d.tail),
        "{case}: {:?}",
        scan.damage
    );
    assert_eq!(scan.end as usize, image.len(), "{case}");
    assert!(took < BOUND, "{case}: {took:?}");
}

/// Every frame before the one hit at `damaged.start` and from the first one starting at or
/// after `damaged.end`; one stretch between them.
fn one_stretch(journal: &Journal, damaged: Range<usize>) -> Expected {
    let hit = journal.first_from(damaged.start + 1) - 1;
    let after = journal.first_from(damaged.end);
    let (from, _) = journal.frames[hit];
    let (to, _) = journal.frames[after];
    Expected {
        records: [&journal.frames[..hit], &journal.frames[after..]].concat(),
        damage: vec![(from, to - from)],
    }
}

#[test]
fn a_megabyte_of_random_bytes_in_a_large_journal_is_skipped_in_linear_time() {
    let mut rng = Rng::seeded(21);
    let mut journal = Journal::build(image_size(), &mut rng);
    let start = journal.damage_start();
    let damaged = start..start + DAMAGE;
    let expected = one_stretch(&journal, damaged.clone());
    for chunk in journal.image[damaged].chunks_mut(8) {
        let random = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&random[..chunk.len()]);
    }
    recover("random bytes", &journal.image, &expected);
}

#[test]
fn a_megabyte_of_plausible_lengths_in_a_large_journal_is_skipped_in_linear_time() {
    let mut rng = Rng::seeded(22);
    let mut journal = Journal::build(image_size(), &mut rng);
    let start = journal.damage_start();
    let damaged = start..start + DAMAGE;
    let expected = one_stretch(&journal, damaged.clone());
    for at in damaged.clone().step_by(FRAME_HEADER) {
        let exact = rng.below(2) == 0;
        let header = journal.lying_header(at, damaged.end, &mut rng, exact);
        journal.image[at..at + FRAME_HEADER].copy_from_slice(&header);
    }
    recover("plausible lengths", &journal.image, &expected);
}

/// Each lying header is a bad frame the main loop meets right after a valid record: checking
/// it must not read the 64 MiB it claims either.
#[test]
fn a_megabyte_of_lying_headers_between_valid_records_is_skipped_in_linear_time() {
    let mut rng = Rng::seeded(23);
    let mut journal = Journal::build(image_size(), &mut rng);
    let first = journal.first_from(journal.image.len() / 2);
    let start = journal.frames[first].0;
    let end = start + DAMAGE;
    let mut records = journal.frames[..first].to_vec();
    let mut damage = Vec::new();
    let mut at = start;
    let mut frame = Vec::new();
    for n in 0u32.. {
        let close = Record::Close {
            id: RequestId::from_bytes(u128::from(n | 1 << 31).to_le_bytes()),
        };
        frame.clear();
        encode(&close, &mut frame).unwrap();
        if at + FRAME_HEADER + frame.len() > end {
            break;
        }
        // Never exact: a header ending at a record start is a valid length-guided resume.
        let header = journal.lying_header(at, end, &mut rng, false);
        journal.image[at..at + FRAME_HEADER].copy_from_slice(&header);
        damage.push((at, FRAME_HEADER));
        at += FRAME_HEADER;
        journal.image[at..at + frame.len()].copy_from_slice(&frame);
        records.push((at, frame.len()));
        at += frame.len();
    }
    // What is left of the megabyte, and of the record it ends in, is one stretch of garbage.
    for b in &mut journal.image[at..end] {
        *b = rng.next_u64() as u8;
    }
    let after = journal.first_from(end);
    let resume = journal.frames[after].0;
    if resume > at {
        damage.push((at, resume - at));
    }
    records.extend_from_slice(&journal.frames[after..]);
    recover(
        "lying headers between records",
        &journal.image,
        &Expected { records, damage },
    );
}
