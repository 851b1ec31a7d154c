//! The crash-safe store: the journal file, its writer thread with group commit, and the index.
//!
//! # Who does what
//!
//! * Callers (the `titanic.*` services, the dispatcher) [`Store::submit`] records and await the
//!   returned [`Ack`]; they read the state through [`Store::lookup`] and friends, which only
//!   take a read lock on the index.
//! * One **writer thread** owns the file. It takes every record queued since its last sync as
//!   one batch, asks the index whether each record changes anything ([`Index::admit`]), appends
//!   the admitted ones with a single `write`, syncs once, applies them to the index and only
//!   then acknowledges the whole batch. So a `200 <uuid>` is never sent for a request that is not
//!   on disk, and sixteen concurrent clients share one `fdatasync` instead of paying sixteen
//!   (*group commit*). The index only ever shows durable state.
//! * After a batch, the writer compacts the journal when dead records dominate: it writes the
//!   live records to `PATH.compact`, syncs it, renames it over `PATH` and syncs the directory, so
//!   a crash at any point leaves either the old or the new journal, both complete.
//!
//! # Durability policies ([`FsyncPolicy`])
//!
//! * `batch` (default): group commit as above; acknowledged means on disk.
//! * `always`: one sync per record, no sharing; acknowledged means on disk, but slower.
//! * `never`: acknowledged once the OS has the bytes; survives `kill -9` of Titanic but not a
//!   power cut or kernel crash.
//!
//! # Recovery on open
//!
//! The whole file is scanned ([`crate::journal::scan`]). A torn tail is cut off; mid-file
//! damage keeps every intact record and rewrites the file cleanly. Every dropped stretch is
//! logged as a `W:` line. A second Titanic on the same journal is refused (`PATH.lock`).
//!
//! # Modules
//!
//! | module | what it holds |
//! |---|---|
//! | `file` | the journal file on disk: preallocation, atomic replace, the file operations the writer needs (`Sink`) |
//! | `recovery` | opening: the lock, the scan, cutting a torn tail or rewriting around damage |
//! | `writer` | the writer thread: group commit, acknowledgements, compaction |

mod file;
mod recovery;
mod writer;

pub use recovery::Recovery;

use crate::index::{BatchView, CompactPolicy, Counts, Index, Lookup};
use crate::journal::{FormatError, Record};
use crate::protocol::RequestId;
use bytes::Bytes;
use file::Sink;
use std::fmt;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot, watch};
use writer::Writer;

/// When the writer syncs the journal to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum FsyncPolicy {
    /// Sync after every record (each acknowledgement waits for its own sync).
    Always,
    /// Group commit: one sync per batch of queued records, acknowledged after it (safe default).
    #[default]
    Batch,
    /// Never sync (acknowledged once written to the OS): survives a crash of Titanic, not of
    /// the machine.
    Never,
}

impl fmt::Display for FsyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FsyncPolicy::Always => "always",
            FsyncPolicy::Batch => "batch",
            FsyncPolicy::Never => "never",
        })
    }
}

/// How the store writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// The durability policy.
    pub fsync: FsyncPolicy,
    /// When to compact.
    pub compact: CompactPolicy,
    /// Most records in one group commit (bounds the memory of one batch).
    pub max_batch: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            fsync: FsyncPolicy::default(),
            compact: CompactPolicy::default(),
            max_batch: 4096,
        }
    }
}

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Opening, reading or repairing the journal failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The file is not a journal.
    #[error("{path}: {source}")]
    Format {
        /// The file concerned.
        path: PathBuf,
        /// Why it is not a journal.
        source: FormatError,
    },
    /// Another process has the journal open.
    #[error("{0} is in use by another titanic (lock held on {0}.lock)")]
    Locked(PathBuf),
    /// The record is too large to journal (the client should not retry it).
    #[error("record too large: {0}")]
    TooLarge(String),
    /// Appending to the journal failed; nothing was acknowledged (the client may retry).
    #[error("journal write failed: {0}")]
    Write(String),
    /// A sync failed earlier: the file's state is unknown, so the store refuses to write more
    /// until Titanic restarts and re-reads it.
    #[error("journal failed earlier ({0}); restart titanic")]
    Failed(String),
    /// The store was shut down.
    #[error("store is shut down")]
    Closed,
}

/// What the writer acknowledged for a submitted record: written, or skipped as a no-op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acked {
    /// Written (and synced, as the policy says) and applied to the index.
    Written,
    /// Not written because it would change nothing (duplicate reply, close of an unknown
    /// request); acknowledged once everything before it is durable.
    Skipped,
}

type AckResult = Result<Acked, StoreError>;

/// The acknowledgement of one submitted record: resolves once it is durable (or failed).
#[derive(Debug)]
pub struct Ack {
    rx: Option<oneshot::Receiver<AckResult>>,
}

impl Ack {
    /// Waits for the outcome.
    pub async fn wait(self) -> AckResult {
        match self.rx {
            Some(rx) => rx.await.unwrap_or(Err(StoreError::Closed)),
            None => Err(StoreError::Closed),
        }
    }

    /// Waits for the outcome, blocking the thread (not for use inside a runtime).
    pub fn wait_blocking(self) -> AckResult {
        match self.rx {
            Some(rx) => rx.blocking_recv().unwrap_or(Err(StoreError::Closed)),
            None => Err(StoreError::Closed),
        }
    }

    /// The outcome if it is already there, without waiting.
    pub fn try_take(&mut self) -> Option<AckResult> {
        let rx = self.rx.as_mut()?;
        match rx.try_recv() {
            Ok(result) => {
                self.rx = None;
                Some(result)
            }
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => {
                self.rx = None;
                Some(Err(StoreError::Closed))
            }
        }
    }
}

/// State shared by the store handles and the writer thread.
struct Shared {
    index: RwLock<Index>,
    /// Bumped whenever new requests become durable (the dispatcher waits on it).
    changes: watch::Sender<u64>,
    failed: AtomicBool,
    /// Syncs done by the writer (records per sync shows how well group commit groups).
    syncs: AtomicU64,
}

impl Shared {
    fn read(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }
}

struct Job {
    record: Record,
    done: oneshot::Sender<AckResult>,
}

enum Msg {
    Append(Job),
    Shutdown(oneshot::Sender<()>),
}

struct Inner {
    tx: mpsc::UnboundedSender<Msg>,
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// A handle to the store. Cheap to clone; all clones share one writer.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("counts", &self.counts())
            .finish()
    }
}

impl Store {
    /// Opens (or creates) the journal at `path`, recovers it, and starts the writer thread.
    ///
    /// Blocking file I/O; the writer is a plain thread, so no runtime is needed.
    pub fn open(path: &Path, options: StoreOptions) -> Result<(Store, Recovery), StoreError> {
        let (file, index, recovery, lock) = recovery::recover(path)?;
        let store = Self::start(file, index, options, Some(lock));
        Ok((store, recovery))
    }

    fn start<S: Sink>(sink: S, index: Index, options: StoreOptions, lock: Option<File>) -> Store {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            index: RwLock::new(index),
            changes: watch::channel(0).0,
            failed: AtomicBool::new(false),
            syncs: AtomicU64::new(0),
        });
        let writer = Writer {
            sink,
            shared: Arc::clone(&shared),
            options,
            buf: Vec::new(),
            view: BatchView::default(),
            failure: None,
            _lock: lock,
        };
        let thread = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || writer.run(rx))
            .expect("cannot start the journal writer thread");
        Store {
            inner: Arc::new(Inner {
                tx,
                shared,
                thread: Mutex::new(Some(thread)),
            }),
        }
    }

    /// Queues `record` for the writer; the returned [`Ack`] resolves once it is durable.
    ///
    /// Queuing happens now, not when the ack is awaited, so the order of `submit` calls is the
    /// order in the journal.
    pub fn submit(&self, record: Record) -> Ack {
        let (done, rx) = oneshot::channel();
        let sent = self
            .inner
            .tx
            .send(Msg::Append(Job { record, done }))
            .is_ok();
        Ack {
            rx: sent.then_some(rx),
        }
    }

    /// Submits `record` and waits until it is durable.
    pub async fn append(&self, record: Record) -> AckResult {
        self.submit(record).wait().await
    }

    /// What `titanic.reply` should answer for `id`.
    pub fn lookup(&self, id: RequestId) -> Lookup {
        self.inner.shared.read().lookup(id)
    }

    /// The open request a client sent with request id `key`, if any.
    pub fn find_key(&self, key: &[u8]) -> Option<RequestId> {
        self.inner.shared.read().find_key(key)
    }

    /// The service and body of `id` if it still waits for a reply (what the dispatcher sends).
    pub fn pending_request(&self, id: RequestId) -> Option<(Bytes, Vec<Bytes>)> {
        let index = self.inner.shared.read();
        let entry = index.get(id)?;
        entry
            .reply
            .is_none()
            .then(|| (entry.service.clone(), entry.body.clone()))
    }

    /// Requests still waiting for a reply that arrived after `after` (`None`: all), oldest
    /// first: arrival number, UUID and service.
    pub fn pending_after(&self, after: Option<u64>) -> Vec<(u64, RequestId, Bytes)> {
        let index = self.inner.shared.read();
        index
            .pending_after(after)
            .filter_map(|(seq, id)| Some((seq, id, index.get(id)?.service.clone())))
            .collect()
    }

    /// A receiver that changes whenever new requests become durable.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.shared.changes.subscribe()
    }

    /// Counts of pending and replied requests and of live and dead journal bytes.
    pub fn counts(&self) -> Counts {
        self.inner.shared.read().counts()
    }

    /// Syncs the writer has done for appended records since open.
    pub fn syncs(&self) -> u64 {
        self.inner.shared.syncs.load(Ordering::Relaxed)
    }

    /// True once a sync failed and the store refuses further writes.
    pub fn has_failed(&self) -> bool {
        self.inner.shared.failed.load(Ordering::Relaxed)
    }

    /// Finishes every queued record, syncs, and stops the writer. Later submits fail with
    /// [`StoreError::Closed`]. Blocks the thread until the writer has stopped, so call it
    /// outside a runtime; inside one use [`close`](Self::close).
    pub fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.inner.tx.send(Msg::Shutdown(tx)).is_ok() {
            let _ = rx.blocking_recv();
        }
        self.join();
    }

    /// [`shutdown`](Self::shutdown) for async code.
    pub async fn close(&self) {
        let (tx, rx) = oneshot::channel();
        if self.inner.tx.send(Msg::Shutdown(tx)).is_ok() {
            let _ = rx.await;
        }
        // The writer has answered and is returning: the join is immediate.
        self.join();
    }

    fn join(&self) {
        let thread = self
            .inner
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests;
