//! A damaged journal: a byte flipped mid-file and the tail cut mid-record.

use crate::support::{broker, echo_worker, titanic, ZmqMdp, WAIT};
use bytes::Bytes;
use common::testkit::tcp_endpoint;
use titanic::journal::{self, Record};
use titanic::protocol::RequestId;
use titanic::{Store, StoreOptions};

fn request(id: RequestId, n: usize) -> Record {
    Record::Request {
        id,
        service: Bytes::from("echo"),
        body: vec![Bytes::from(format!("request {n}"))],
        key: None,
    }
}

#[test]
fn damaged_journal_opens_reports_with_w_and_keeps_intact_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    let ids: Vec<RequestId> = (0..5).map(|_| RequestId::random()).collect();
    {
        let (store, _) = Store::open(&path, StoreOptions::default()).unwrap();
        for (n, id) in ids.iter().enumerate().take(4) {
            store.submit(request(*id, n)).wait_blocking().unwrap();
        }
        let reply = Record::Reply {
            id: ids[0],
            body: vec![Bytes::from("stored reply")],
        };
        store.submit(reply).wait_blocking().unwrap();
        store.submit(request(ids[4], 4)).wait_blocking().unwrap();
        store.shutdown();
    }
    // Records: request 0..3, reply 0, request 4. Flip a payload byte of request 1 and cut
    // request 4 in the middle.
    let mut image = std::fs::read(&path).unwrap();
    let found = journal::scan(&image).unwrap().records;
    assert_eq!(found.len(), 6);
    image[found[1].offset as usize + 20] ^= 0x10;
    image.truncate((found[5].offset + found[5].size / 2) as usize);
    std::fs::write(&path, &image).unwrap();

    let endpoint = tcp_endpoint();
    let _broker = broker(&endpoint);
    let mut titanic = titanic(&endpoint, &path, &[]);
    let corrupt = titanic
        .lines()
        .into_iter()
        .find(|l| l.contains("corrupt stretch"));
    let corrupt = corrupt.expect("no W: line for the flipped byte");
    assert!(corrupt.starts_with("W: "), "{corrupt}");
    assert!(
        corrupt.contains(&format!("at offset {}", found[1].offset)),
        "{corrupt}"
    );
    let torn = titanic
        .lines()
        .into_iter()
        .find(|l| l.contains("torn tail"));
    let torn = torn.expect("no W: line for the cut tail");
    assert!(torn.starts_with("W: "), "{torn}");
    assert!(
        torn.contains(&format!("at offset {}", found[5].offset)),
        "{torn}"
    );
    // Printed before "titanic ready", which the start-up already waited for.
    assert_eq!(titanic.count("W: journal"), 3);
    assert_eq!(titanic.count("rewritten keeping all 4 intact records"), 1);
    assert_eq!(
        titanic.count("4 records read, 2 requests pending, 1 replied"),
        1
    );

    let mut mdp = ZmqMdp::new(&endpoint);
    let status =
        |mdp: &mut ZmqMdp, id: &RequestId| mdp.tsp("titanic.reply", &[id.to_string().as_bytes()]);
    assert_eq!(
        status(&mut mdp, &ids[0]),
        ("200".to_owned(), vec![b"stored reply".to_vec()])
    );
    assert_eq!(status(&mut mdp, &ids[1]).0, "400");
    assert_eq!(status(&mut mdp, &ids[4]).0, "400");
    assert_eq!(status(&mut mdp, &ids[2]).0, "300");

    // The survivors are dispatched as usual once a worker is there.
    let _worker = echo_worker(&endpoint);
    for n in [2, 3] {
        let (status, body) = mdp.wait_reply(&ids[n].to_string());
        assert_eq!(status, "200");
        assert_eq!(body, vec![format!("request {n}").into_bytes()]);
    }
    titanic.interrupt_and_wait(WAIT);
    let (_, recovery) = Store::open(&path, StoreOptions::default()).unwrap();
    assert!(recovery.damage.is_empty());
    assert_eq!((recovery.counts.pending, recovery.counts.replied), (0, 3));
}
