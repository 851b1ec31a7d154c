//! The journal file on disk, and the file operations the writer needs ([`Sink`]).

use super::RequestId;
use crate::index::Index;
use crate::journal::{self, FormatError, MAGIC};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The file operations the writer needs; a trait so tests can watch the order of writes,
/// syncs and acknowledgements.
pub(super) trait Sink: Send + 'static {
    /// Appends bytes at the end.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Makes everything appended so far durable.
    fn sync(&mut self) -> io::Result<()>;
    /// Cuts off whatever a failed append left behind.
    fn rollback(&mut self) -> io::Result<()>;
    /// Atomically replaces the whole journal with `image` (compaction).
    fn replace(&mut self, image: &[u8]) -> io::Result<()>;
}

/// The journal file on disk.
pub(super) struct JournalFile {
    path: PathBuf,
    file: File,
    /// Length of the valid content (where the next append goes).
    len: u64,
    /// File length: the data, then zero-filled space ready for appends.
    allocated: u64,
}

/// The file grows by this much zero-filled space at a time. Writing into blocks that already
/// exist lets `fdatasync` skip the metadata commit an append needs; the zeros are written (not
/// `fallocate`d) because unwritten extents would need that commit again on first write.
pub(super) const PREALLOCATE: u64 = 1 << 20;

pub(super) fn compact_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".compact");
    PathBuf::from(p)
}

pub(super) fn lock_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// Syncs the directory holding `path`, so a create or rename there is durable.
fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

impl JournalFile {
    pub(super) fn open_existing(path: &Path, len: u64) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let allocated = file.metadata()?.len().max(len);
        Ok(Self {
            path: path.to_owned(),
            file,
            len,
            allocated,
        })
    }

    /// Writes `image` as a brand-new journal at `path`, atomically.
    pub(super) fn create(path: &Path, image: &[u8]) -> io::Result<Self> {
        let tmp = compact_path(path);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all(image)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(path)?;
        Ok(Self {
            path: path.to_owned(),
            file,
            len: image.len() as u64,
            allocated: image.len() as u64,
        })
    }

    /// Grows the zero-filled space so that `need` bytes fit, and makes the growth durable.
    fn extend(&mut self, need: u64) -> io::Result<()> {
        let target = (need / PREALLOCATE + 1) * PREALLOCATE;
        let zeros = vec![0u8; 64 << 10];
        let mut at = self.allocated;
        while at < target {
            let n = (target - at).min(zeros.len() as u64) as usize;
            self.file.write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
        self.file.sync_all()?;
        self.allocated = target;
        Ok(())
    }
}

impl Sink for JournalFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let end = self.len + bytes.len() as u64;
        if end > self.allocated {
            self.extend(end)?;
        }
        self.file.write_all_at(bytes, self.len)?;
        self.len = end;
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        // fdatasync: the data, plus metadata only if needed to read it back (it is not while
        // the writes land in preallocated space).
        self.file.sync_data()
    }

    fn rollback(&mut self) -> io::Result<()> {
        // Whatever a failed write left after `len` goes, preallocated space with it.
        self.file.set_len(self.len)?;
        self.allocated = self.len;
        Ok(())
    }

    fn replace(&mut self, image: &[u8]) -> io::Result<()> {
        *self = JournalFile::create(&self.path, image)?;
        Ok(())
    }
}

/// Each record's request and its size in the journal.
pub(super) type Sizes = Vec<(RequestId, u64)>;

/// A journal image holding the index's live records, and each record's size.
pub(super) fn live_image(index: &Index) -> Result<(Vec<u8>, Sizes), FormatError> {
    let mut image = MAGIC.to_vec();
    let mut sizes = Vec::new();
    for record in index.live_records() {
        let id = record.id();
        let size = journal::encode(&record, &mut image)?;
        sizes.push((id, size as u64));
    }
    Ok((image, sizes))
}
