//! Opening the journal: take its lock, scan it whole, cut a torn tail or rewrite the file
//! around mid-file damage, and rebuild the index from what is intact.

use super::file::{compact_path, live_image, lock_path, JournalFile};
use super::StoreError;
use crate::index::{Counts, Index};
use crate::journal::{self, Damage};
use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read};
use std::path::Path;

/// What opening the journal found.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    /// Intact records read.
    pub records: usize,
    /// Stretches dropped (each was logged as a `W:` line).
    pub damage: Vec<Damage>,
    /// The file was rewritten (new journal, or mid-file damage cleaned up).
    pub rewritten: bool,
    /// Bytes cut off the end (a torn tail).
    pub truncated: u64,
    /// What the index holds after the scan.
    pub counts: Counts,
}

impl fmt::Display for Recovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} records read, {} requests pending, {} replied, {} damaged stretches dropped",
            self.records,
            self.counts.pending,
            self.counts.replied,
            self.damage.len()
        )
    }
}

/// Opens (or creates) the journal at `path` and recovers it: the file ready for appends, the
/// index of its intact records, what was found, and the lock held for as long as the file is
/// in use.
pub(super) fn recover(path: &Path) -> Result<(JournalFile, Index, Recovery, File), StoreError> {
    let io_err = |what, path: &Path| {
        let path = path.to_owned();
        move |source| StoreError::Io { what, path, source }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io_err("cannot create directory", dir))?;
    }
    let lock_file = lock_path(path);
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_file)
        .map_err(io_err("cannot open", &lock_file))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Err(StoreError::Locked(path.to_owned())),
        Err(TryLockError::Error(e)) => return Err(io_err("cannot lock", &lock_file)(e)),
    }
    // A compaction that crashed before its rename left only a temporary file behind.
    let tmp = compact_path(path);
    if tmp.exists() {
        tracing::warn!(
            "removing {} left by an interrupted compaction",
            tmp.display()
        );
        fs::remove_file(&tmp).map_err(io_err("cannot remove", &tmp))?;
    }

    let mut image = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut image)
                .map_err(io_err("cannot read", path))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("cannot open", path)(e)),
    }
    let scan = journal::scan(&image).map_err(|source| StoreError::Format {
        path: path.to_owned(),
        source,
    })?;
    let mut recovery = Recovery {
        records: scan.records.len(),
        damage: scan.damage.clone(),
        ..Recovery::default()
    };
    for d in &scan.damage {
        tracing::warn!("journal {}: {d}", path.display());
    }
    let mut index = Index::new();
    let damaged_mid_file = scan.damaged_mid_file();
    for found in scan.records {
        index.apply(found.record, found.size);
    }

    let file = if scan.needs_header || damaged_mid_file {
        // Rewrite from the index: a clean file without the damaged stretches.
        let (image, sizes) = live_image(&index).map_err(|e| StoreError::Io {
            what: "cannot encode",
            path: path.to_owned(),
            source: io::Error::other(e),
        })?;
        let file = JournalFile::create(path, &image).map_err(io_err("cannot rewrite", path))?;
        index.compacted(&sizes);
        recovery.rewritten = true;
        if damaged_mid_file {
            tracing::warn!(
                "journal {}: rewritten keeping all {} intact records",
                path.display(),
                recovery.records
            );
        }
        file
    } else {
        if !scan.damage.is_empty() {
            // Cut the torn tail (and the preallocated space after it).
            recovery.truncated = image.len() as u64 - scan.end;
            OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| f.set_len(scan.end).and_then(|()| f.sync_all()))
                .map_err(io_err("cannot truncate", path))?;
        }
        JournalFile::open_existing(path, scan.end).map_err(io_err("cannot open", path))?
    };
    recovery.counts = index.counts();
    Ok((file, index, recovery, lock))
}
