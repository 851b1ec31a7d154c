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

use crate::index::{Admission, BatchView, CompactPolicy, Counts, Index, Lookup};
use crate::journal::{self, Damage, FormatError, Record, MAGIC};
use crate::tsp::RequestId;
use bytes::Bytes;
use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot, watch};

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

/// What became of a submitted record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Written (and synced, as the policy says) and applied to the index.
    Written,
    /// Not written because it would change nothing (duplicate reply, close of an unknown
    /// request); acknowledged once everything before it is durable.
    Skipped,
}

type AckResult = Result<Outcome, StoreError>;

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

/// The file operations the writer needs; a trait so tests can watch the order of writes,
/// syncs and acknowledgements.
trait Sink: Send + 'static {
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
struct JournalFile {
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
const PREALLOCATE: u64 = 1 << 20;

fn compact_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".compact");
    PathBuf::from(p)
}

fn lock_path(path: &Path) -> PathBuf {
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
    fn open_existing(path: &Path, len: u64) -> io::Result<Self> {
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
    fn create(path: &Path, image: &[u8]) -> io::Result<Self> {
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

/// Each record's request and its size in the journal.
type Sizes = Vec<(RequestId, u64)>;

/// A journal image holding the index's live records, and each record's size.
fn live_image(index: &Index) -> Result<(Vec<u8>, Sizes), FormatError> {
    let mut image = MAGIC.to_vec();
    let mut sizes = Vec::new();
    for record in index.live_records() {
        let id = record.id();
        let size = journal::encode(&record, &mut image)?;
        sizes.push((id, size as u64));
    }
    Ok((image, sizes))
}

/// The writer thread: the only code that touches the journal file after open.
struct Writer<S> {
    sink: S,
    shared: Arc<Shared>,
    options: StoreOptions,
    buf: Vec<u8>,
    view: BatchView,
    /// Set when a sync failed: the file's state is unknown from then on.
    failure: Option<String>,
    /// The journal's lock, held while the writer runs (the OS releases it even on `kill -9`).
    _lock: Option<File>,
}

impl<S: Sink> Writer<S> {
    fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
        let mut batch = Vec::new();
        loop {
            let mut shutdown = None;
            match rx.blocking_recv() {
                Some(Msg::Append(job)) => batch.push(job),
                Some(Msg::Shutdown(done)) => shutdown = Some(done),
                None => {}
            }
            let closed = batch.is_empty() && shutdown.is_none();
            // Everything queued meanwhile joins the batch: that is the group commit.
            while shutdown.is_none() && batch.len() < self.options.max_batch {
                match rx.try_recv() {
                    Ok(Msg::Append(job)) => batch.push(job),
                    Ok(Msg::Shutdown(done)) => shutdown = Some(done),
                    Err(_) => break,
                }
            }
            if self.options.fsync == FsyncPolicy::Always {
                for job in batch.drain(..) {
                    self.commit(vec![job]);
                }
            } else if !batch.is_empty() {
                let jobs = std::mem::take(&mut batch);
                self.commit(jobs);
            }
            self.maybe_compact();
            if closed || shutdown.is_some() {
                if self.failure.is_none() {
                    if let Err(e) = self.sink.sync() {
                        tracing::error!("journal sync at shutdown failed: {e}");
                    }
                }
                if let Some(done) = shutdown {
                    let _ = done.send(());
                }
                return;
            }
        }
    }

    fn fail_all(jobs: Vec<Job>, error: impl Fn() -> StoreError) {
        for job in jobs {
            let _ = job.done.send(Err(error()));
        }
    }

    /// Writes, syncs and applies one batch, then acknowledges it.
    fn commit(&mut self, jobs: Vec<Job>) {
        if let Some(failure) = &self.failure {
            let failure = failure.clone();
            return Self::fail_all(jobs, || StoreError::Failed(failure.clone()));
        }
        self.buf.clear();
        self.view.clear();
        let mut admitted = Vec::with_capacity(jobs.len());
        {
            let index = self.shared.read();
            for job in jobs {
                match index.admit(&job.record, &self.view) {
                    Admission::Skip => admitted.push((job, None)),
                    Admission::Write => match journal::encode(&job.record, &mut self.buf) {
                        Ok(size) => {
                            self.view.note(&job.record);
                            admitted.push((job, Some(size as u64)));
                        }
                        Err(e) => {
                            let _ = job.done.send(Err(StoreError::TooLarge(e.to_string())));
                        }
                    },
                }
            }
        }
        if !self.buf.is_empty() {
            if let Err(e) = self.sink.append(&self.buf) {
                tracing::error!("journal write failed: {e}");
                if let Err(e2) = self.sink.rollback() {
                    self.fail(format!("write failed ({e}), then truncate failed ({e2})"));
                }
                let jobs = admitted.into_iter().map(|(j, _)| j).collect();
                return Self::fail_all(jobs, || StoreError::Write(e.to_string()));
            }
            if self.options.fsync != FsyncPolicy::Never {
                if let Err(e) = self.sink.sync() {
                    self.fail(format!("sync failed: {e}"));
                    let jobs = admitted.into_iter().map(|(j, _)| j).collect();
                    return Self::fail_all(jobs, || StoreError::Failed(e.to_string()));
                }
                self.shared.syncs.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Durable: make it visible, then acknowledge.
        let mut acks = Vec::with_capacity(admitted.len());
        let mut new_requests = false;
        {
            let mut index = self.shared.write();
            for (job, size) in admitted {
                let outcome = match size {
                    Some(size) => {
                        new_requests |= matches!(job.record, Record::Request { .. });
                        index.apply(job.record, size);
                        Outcome::Written
                    }
                    None => Outcome::Skipped,
                };
                acks.push((job.done, outcome));
            }
        }
        if new_requests {
            self.shared.changes.send_modify(|n| *n += 1);
        }
        for (done, outcome) in acks {
            let _ = done.send(Ok(outcome));
        }
    }

    fn fail(&mut self, why: String) {
        tracing::error!("journal unusable: {why}; refusing further writes until restart");
        self.shared.failed.store(true, Ordering::Relaxed);
        self.failure = Some(why);
    }

    fn maybe_compact(&mut self) {
        if self.failure.is_some() {
            return;
        }
        let (image, sizes, before) = {
            let index = self.shared.read();
            if !index.should_compact(&self.options.compact) {
                return;
            }
            let counts = index.counts();
            match live_image(&index) {
                Ok((image, sizes)) => (image, sizes, counts.live_bytes + counts.dead_bytes),
                Err(e) => {
                    tracing::error!("cannot encode the compacted journal: {e}");
                    return;
                }
            }
        };
        match self.sink.replace(&image) {
            Ok(()) => {
                self.shared.write().compacted(&sizes);
                tracing::info!(
                    "journal compacted: {} records kept, {} bytes of records dropped",
                    sizes.len(),
                    before.saturating_sub(image.len() as u64 - MAGIC.len() as u64)
                );
            }
            Err(e) => {
                // Keep appending to the old file; try again once twice as much is dead.
                let dead = self.shared.read().counts().dead_bytes;
                self.options.compact.min_dead_bytes = dead.saturating_mul(2);
                tracing::warn!("journal compaction failed, keeping the old file: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc as std_mpsc;

    fn request(n: u8) -> Record {
        Record::Request {
            id: RequestId::from_bytes([n; 16]),
            service: Bytes::from("echo"),
            body: vec![Bytes::from(format!("body {n}"))],
            key: None,
        }
    }

    fn reply(n: u8) -> Record {
        Record::Reply {
            id: RequestId::from_bytes([n; 16]),
            body: vec![Bytes::from(format!("reply {n}"))],
        }
    }

    fn close(n: u8) -> Record {
        Record::Close {
            id: RequestId::from_bytes([n; 16]),
        }
    }

    fn id(n: u8) -> RequestId {
        RequestId::from_bytes([n; 16])
    }

    #[derive(Debug, PartialEq, Eq)]
    enum Event {
        Append(usize),
        SyncEntered,
    }

    /// A sink whose `sync` blocks until the test hands out a permit, and reports every call.
    struct GatedSink {
        events: std_mpsc::Sender<Event>,
        permits: std_mpsc::Receiver<()>,
    }

    impl Sink for GatedSink {
        fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
            self.events.send(Event::Append(bytes.len())).unwrap();
            Ok(())
        }
        fn sync(&mut self) -> io::Result<()> {
            self.events.send(Event::SyncEntered).unwrap();
            self.permits.recv().map_err(io::Error::other)
        }
        fn rollback(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn replace(&mut self, _: &[u8]) -> io::Result<()> {
            Ok(())
        }
    }

    fn gated(policy: FsyncPolicy) -> (Store, std_mpsc::Receiver<Event>, std_mpsc::Sender<()>) {
        let (events, event_rx) = std_mpsc::channel();
        let (permit_tx, permits) = std_mpsc::channel();
        let options = StoreOptions {
            fsync: policy,
            ..StoreOptions::default()
        };
        let store = Store::start(GatedSink { events, permits }, Index::new(), options, None);
        (store, event_rx, permit_tx)
    }

    fn next(events: &std_mpsc::Receiver<Event>) -> Event {
        events
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("writer made no progress")
    }

    #[test]
    fn group_commit_acknowledges_only_after_the_shared_sync() {
        let (store, events, permits) = gated(FsyncPolicy::Batch);
        let mut first = store.submit(request(0));
        assert!(matches!(next(&events), Event::Append(_)));
        assert_eq!(next(&events), Event::SyncEntered);
        // While the first sync runs, fifteen more requests queue up.
        let mut rest: Vec<_> = (1..16).map(|n| store.submit(request(n))).collect();
        assert!(first.try_take().is_none(), "acknowledged before its sync");
        assert_eq!(
            store.lookup(id(0)),
            Lookup::Unknown,
            "visible before its sync"
        );
        permits.send(()).unwrap();
        assert_eq!(first.wait_blocking().unwrap(), Outcome::Written);
        assert_eq!(store.lookup(id(0)), Lookup::Pending);

        // The fifteen share one write and one sync.
        assert!(matches!(next(&events), Event::Append(_)));
        assert_eq!(next(&events), Event::SyncEntered);
        assert!(rest.iter_mut().all(|a| a.try_take().is_none()));
        assert_eq!(store.lookup(id(15)), Lookup::Unknown);
        permits.send(()).unwrap();
        for ack in rest {
            assert_eq!(ack.wait_blocking().unwrap(), Outcome::Written);
        }
        assert_eq!(store.counts().pending, 16);
        assert_eq!(store.syncs(), 2, "sixteen records, two syncs");
        permits.send(()).unwrap(); // the shutdown sync
        store.shutdown();
        assert!(events.try_iter().all(|e| e == Event::SyncEntered));
    }

    #[test]
    fn always_syncs_each_record_on_its_own() {
        let (store, events, permits) = gated(FsyncPolicy::Always);
        let acks: Vec<_> = (0..3).map(|n| store.submit(request(n))).collect();
        for _ in 0..3 {
            assert!(matches!(next(&events), Event::Append(_)));
            assert_eq!(next(&events), Event::SyncEntered);
            permits.send(()).unwrap();
        }
        for ack in acks {
            assert_eq!(ack.wait_blocking().unwrap(), Outcome::Written);
        }
        permits.send(()).unwrap();
        store.shutdown();
    }

    #[test]
    fn never_acknowledges_without_syncing() {
        let (store, events, permits) = gated(FsyncPolicy::Never);
        let acks: Vec<_> = (0..3).map(|n| store.submit(request(n))).collect();
        for ack in acks {
            assert_eq!(ack.wait_blocking().unwrap(), Outcome::Written);
        }
        assert!(events.try_iter().all(|e| matches!(e, Event::Append(_))));
        permits.send(()).unwrap();
        store.shutdown();
    }

    #[test]
    fn duplicate_replies_and_unknown_closes_are_not_written() {
        let (store, _events, permits) = gated(FsyncPolicy::Never);
        let acks = [
            store.submit(request(1)),
            store.submit(reply(1)),
            store.submit(reply(1)),
            store.submit(close(2)),
        ];
        let outcomes: Vec<_> = acks
            .into_iter()
            .map(|a| a.wait_blocking().unwrap())
            .collect();
        assert_eq!(
            outcomes,
            [
                Outcome::Written,
                Outcome::Written,
                Outcome::Skipped,
                Outcome::Skipped
            ]
        );
        assert_eq!(
            store.lookup(id(1)),
            Lookup::Replied(vec![Bytes::from("reply 1")])
        );
        assert_eq!(store.append_blocking(reply(1)), Outcome::Skipped);
        permits.send(()).unwrap();
        store.shutdown();
    }

    impl Store {
        fn append_blocking(&self, record: Record) -> Outcome {
            self.submit(record).wait_blocking().unwrap()
        }
    }

    fn open(path: &Path, min_dead_bytes: u64) -> (Store, Recovery) {
        let options = StoreOptions {
            compact: CompactPolicy { min_dead_bytes },
            ..StoreOptions::default()
        };
        Store::open(path, options).unwrap()
    }

    #[test]
    fn reopen_restores_every_acknowledged_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (store, rec) = open(&path, u64::MAX);
        assert!(rec.rewritten && rec.records == 0);
        for n in 0..10 {
            store.append_blocking(request(n));
        }
        for n in 0..4 {
            store.append_blocking(reply(n));
        }
        store.append_blocking(close(0));
        store.append_blocking(close(5));
        store.shutdown();

        let (store, rec) = open(&path, u64::MAX);
        assert!(rec.damage.is_empty() && !rec.rewritten);
        assert_eq!(rec.records, 16);
        assert_eq!((rec.counts.pending, rec.counts.replied), (5, 3));
        assert_eq!(store.lookup(id(0)), Lookup::Unknown);
        assert_eq!(
            store.lookup(id(3)),
            Lookup::Replied(vec![Bytes::from("reply 3")])
        );
        assert_eq!(store.lookup(id(9)), Lookup::Pending);
        let order: Vec<_> = store
            .pending_after(None)
            .into_iter()
            .map(|(_, i, _)| i)
            .collect();
        assert_eq!(order, [4, 6, 7, 8, 9].map(id));
        // The reply of 3 is known after the reopen: a second one is not written.
        assert_eq!(store.append_blocking(reply(3)), Outcome::Skipped);
        store.shutdown();
    }

    #[test]
    fn a_second_store_on_the_same_journal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (store, _) = open(&path, u64::MAX);
        assert!(matches!(
            Store::open(&path, StoreOptions::default()),
            Err(StoreError::Locked(_))
        ));
        store.shutdown();
        drop(store);
        let (store, _) = open(&path, u64::MAX);
        store.shutdown();
    }

    #[test]
    fn a_file_that_is_not_a_journal_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        fs::write(&path, b"precious data, not a journal").unwrap();
        assert!(matches!(
            Store::open(&path, StoreOptions::default()),
            Err(StoreError::Format { .. })
        ));
        assert_eq!(fs::read(&path).unwrap(), b"precious data, not a journal");
    }

    /// Where the records end (the file itself is longer by its preallocated space).
    fn data_len(path: &Path) -> u64 {
        journal::scan(&fs::read(path).unwrap()).unwrap().end
    }

    #[test]
    fn appends_land_in_preallocated_space() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (store, _) = open(&path, u64::MAX);
        store.append_blocking(request(1));
        let file_len = fs::metadata(&path).unwrap().len();
        assert_eq!(file_len, PREALLOCATE);
        for n in 2..50 {
            store.append_blocking(request(n));
        }
        assert_eq!(fs::metadata(&path).unwrap().len(), file_len);
        store.shutdown();
        let (store, rec) = open(&path, u64::MAX);
        assert!(rec.damage.is_empty() && rec.truncated == 0);
        assert_eq!(rec.counts.pending, 49);
        store.append_blocking(request(50));
        store.shutdown();
        let scan = journal::scan(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(scan.records.len(), 50);
        assert_eq!(scan.end + scan.preallocated, PREALLOCATE);
    }

    fn journal_with(path: &Path, records: &[Record]) -> Vec<u64> {
        let (store, _) = open(path, u64::MAX);
        for r in records {
            store.append_blocking(r.clone());
        }
        store.shutdown();
        let image = fs::read(path).unwrap();
        journal::scan(&image)
            .unwrap()
            .records
            .iter()
            .map(|f| f.offset)
            .collect()
    }

    #[test]
    fn a_torn_tail_is_cut_off_and_the_file_appendable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let offsets = journal_with(&path, &[request(1), request(2), request(3)]);
        let full = data_len(&path);
        let cut = offsets[2] + 5;
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(cut)
            .unwrap();

        let (store, rec) = open(&path, u64::MAX);
        assert_eq!(rec.records, 2);
        assert_eq!(rec.truncated, 5);
        assert!(rec.damage[0].tail && rec.damage[0].offset == offsets[2]);
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            offsets[2],
            "not truncated"
        );
        assert_eq!(store.lookup(id(3)), Lookup::Unknown);
        store.append_blocking(request(3));
        store.shutdown();
        assert_eq!(data_len(&path), full);
        let (store, rec) = open(&path, u64::MAX);
        assert!(rec.damage.is_empty());
        assert_eq!(store.lookup(id(3)), Lookup::Pending);
        store.shutdown();
    }

    #[test]
    fn a_flipped_byte_mid_file_keeps_every_intact_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let offsets = journal_with(&path, &[request(1), request(2), reply(1), request(3)]);
        let mut image = fs::read(&path).unwrap();
        image[offsets[1] as usize + 12] ^= 0x01; // inside request 2's payload
        fs::write(&path, &image).unwrap();

        let (store, rec) = open(&path, u64::MAX);
        assert_eq!(rec.records, 3);
        assert_eq!(rec.damage.len(), 1);
        assert!(!rec.damage[0].tail);
        assert!(rec.rewritten);
        assert_eq!(
            store.lookup(id(1)),
            Lookup::Replied(vec![Bytes::from("reply 1")])
        );
        assert_eq!(store.lookup(id(2)), Lookup::Unknown);
        assert_eq!(store.lookup(id(3)), Lookup::Pending);
        store.shutdown();
        // The rewrite left a clean file.
        let (store, rec) = open(&path, u64::MAX);
        assert!(rec.damage.is_empty() && rec.records == 3);
        store.shutdown();
    }

    #[test]
    fn compaction_preserves_live_records_and_shrinks_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (store, _) = open(&path, 2000);
        for n in 0..100 {
            store.append_blocking(request(n));
        }
        for n in 0..100 {
            store.append_blocking(reply(n));
        }
        let before = data_len(&path);
        for n in 0..90 {
            store.append_blocking(close(n));
        }
        let after = data_len(&path);
        assert!(after < before / 2, "no compaction: {before} → {after}");
        assert!(!compact_path(&path).exists());
        // Still appendable after the swap, and the live set is intact.
        store.append_blocking(request(200));
        store.shutdown();

        let (store, rec) = open(&path, u64::MAX);
        assert!(rec.damage.is_empty());
        assert_eq!((rec.counts.pending, rec.counts.replied), (1, 10));
        for n in 0..90 {
            assert_eq!(store.lookup(id(n)), Lookup::Unknown);
        }
        for n in 90..100 {
            assert_eq!(
                store.lookup(id(n)),
                Lookup::Replied(vec![Bytes::from(format!("reply {n}"))])
            );
        }
        assert_eq!(store.lookup(id(200)), Lookup::Pending);
        store.shutdown();
    }

    #[test]
    fn a_leftover_compaction_file_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        journal_with(&path, &[request(1)]);
        fs::write(compact_path(&path), b"TITANIC\x01half-written").unwrap();
        let (store, rec) = open(&path, u64::MAX);
        assert_eq!(rec.records, 1);
        assert!(!compact_path(&path).exists());
        store.shutdown();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_all_land_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let (store, _) = open(&path, u64::MAX);
        let tasks: Vec<_> = (0..64u8)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move { store.append(request(n)).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap(), Outcome::Written);
        }
        store.close().await;
        let (store, rec) = open(&path, u64::MAX);
        assert_eq!(rec.counts.pending, 64);
        store.close().await;
    }
}
