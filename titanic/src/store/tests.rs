//! The store's tests: group commit and acknowledgement order with a gated sink, recovery from
//! torn tails and mid-file damage, compaction, the lock.

use super::file::{compact_path, PREALLOCATE};
use super::*;
use crate::journal;
use std::fs::{self, OpenOptions};
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
    assert_eq!(first.wait_blocking().unwrap(), Acked::Written);
    assert_eq!(store.lookup(id(0)), Lookup::Pending);

    // The fifteen share one write and one sync.
    assert!(matches!(next(&events), Event::Append(_)));
    assert_eq!(next(&events), Event::SyncEntered);
    assert!(rest.iter_mut().all(|a| a.try_take().is_none()));
    assert_eq!(store.lookup(id(15)), Lookup::Unknown);
    permits.send(()).unwrap();
    for ack in rest {
        assert_eq!(ack.wait_blocking().unwrap(), Acked::Written);
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
        assert_eq!(ack.wait_blocking().unwrap(), Acked::Written);
    }
    permits.send(()).unwrap();
    store.shutdown();
}

#[test]
fn never_acknowledges_without_syncing() {
    let (store, events, permits) = gated(FsyncPolicy::Never);
    let acks: Vec<_> = (0..3).map(|n| store.submit(request(n))).collect();
    for ack in acks {
        assert_eq!(ack.wait_blocking().unwrap(), Acked::Written);
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
            Acked::Written,
            Acked::Written,
            Acked::Skipped,
            Acked::Skipped
        ]
    );
    assert_eq!(
        store.lookup(id(1)),
        Lookup::Replied(vec![Bytes::from("reply 1")])
    );
    assert_eq!(store.append_blocking(reply(1)), Acked::Skipped);
    permits.send(()).unwrap();
    store.shutdown();
}

impl Store {
    fn append_blocking(&self, record: Record) -> Acked {
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
    assert_eq!(store.append_blocking(reply(3)), Acked::Skipped);
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
        assert_eq!(t.await.unwrap().unwrap(), Acked::Written);
    }
    store.close().await;
    let (store, rec) = open(&path, u64::MAX);
    assert_eq!(rec.counts.pending, 64);
    store.close().await;
}
