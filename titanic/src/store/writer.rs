//! The writer thread: the only code that touches the journal file after open. It commits
//! batches (group commit), acknowledges them once durable, and compacts.

use super::file::{live_image, Sink};
use super::{Acked, FsyncPolicy, Job, Msg, Shared, StoreError, StoreOptions};
use crate::index::{Admission, BatchView};
use crate::journal::{self, Record, MAGIC};
use std::fs::File;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The writer thread: the only code that touches the journal file after open.
pub(super) struct Writer<S> {
    pub(super) sink: S,
    pub(super) shared: Arc<Shared>,
    pub(super) options: StoreOptions,
    pub(super) buf: Vec<u8>,
    pub(super) view: BatchView,
    /// Set when a sync failed: the file's state is unknown from then on.
    pub(super) failure: Option<String>,
    /// The journal's lock, held while the writer runs (the OS releases it even on `kill -9`).
    pub(super) _lock: Option<File>,
}

impl<S: Sink> Writer<S> {
    pub(super) fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>) {
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
                        Acked::Written
                    }
                    None => Acked::Skipped,
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
