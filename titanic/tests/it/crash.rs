//! Crash safety: `kill -9` Titanic again and again under load.

use crate::support::{
    acknowledged, broker, echo_worker, eventually, replies_seen, titanic, ZmqMdp, WAIT,
};
use common::report::Summary;
use common::rng::Rng;
use common::testkit::{tcp_endpoint, Proc};
use std::collections::HashMap;
use std::time::Duration;
use titanic::journal::{self, Record};

const REQUESTS: u64 = 300;
const KILLS: usize = 4;

#[test]
fn acknowledged_requests_survive_kill_9_under_load() {
    // No compaction, so the final file still holds every reply ever stored.
    kill_titanic_under_load("100000000000", 0x7174_a41c);
}

#[test]
fn acknowledged_requests_survive_kill_9_during_compactions() {
    // Compaction after every few kilobytes of closed requests: some kills land in one.
    kill_titanic_under_load("2000", 0x0c0_ffee);
}

fn kill_titanic_under_load(compact_min_bytes: &str, seed: u64) {
    let compacting = compact_min_bytes.len() < 10;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    let endpoint = tcp_endpoint();
    let _broker = broker(&endpoint);
    let _worker = echo_worker(&endpoint);
    let mut titanic = titanic(
        &endpoint,
        &path,
        &["--compact-min-bytes", compact_min_bytes],
    );
    let count = REQUESTS.to_string();
    let mut client = Proc::spawn(
        "ticlient",
        env!("CARGO_BIN_EXE_ticlient"),
        [
            "--broker",
            &endpoint,
            "--verify",
            "--count",
            &count,
            "--concurrency",
            "8",
            "--first-poll-ms",
            "10",
            "--poll-ms",
            "50",
            "--timeout-ms",
            "1000",
            "--retries",
            "2",
        ],
    );
    let mut mdp = ZmqMdp::new(&endpoint);
    let mut rng = Rng::seeded(seed);

    for round in 0..KILLS {
        // Let the load run (more acknowledgements come in), then kill at a random moment:
        // requests are arriving, being journaled and forwarded all the time.
        let seen = acknowledged(&client).len();
        eventually(WAIT, "more acknowledged requests", || {
            acknowledged(&client).len() >= seen + 10
        });
        // Deliberate: a random moment within the next 150 ms, so each kill lands elsewhere.
        std::thread::sleep(Duration::from_millis(rng.below(150)));
        titanic.kill9();
        let acked = acknowledged(&client);
        titanic.restart();
        titanic.wait_for("titanic ready", WAIT);

        // Every request acknowledged so far is still there: pending or replied, unless the
        // client already got its reply and closed it.
        for uuid in &acked {
            if replies_seen(&client, uuid) > 0 {
                continue;
            }
            let (status, _) = mdp.tsp("titanic.reply", &[uuid.as_bytes()]);
            let closed_meanwhile = replies_seen(&client, uuid) > 0;
            assert!(
                status == "200" || status == "300" || closed_meanwhile,
                "round {round}: acknowledged {uuid} answered {status} after the restart"
            );
        }
    }

    let status = client.wait_exit(WAIT * 4).expect("ticlient did not finish");
    let summary: Summary = client.wait_for("summary", WAIT).parse().unwrap();
    assert!(status.success(), "ticlient failed: {summary}");
    assert_eq!(
        (summary.sent, summary.answered, summary.failed),
        (REQUESTS, REQUESTS, 0)
    );
    // Every acknowledged request got exactly one (verified) reply.
    let acked = acknowledged(&client);
    assert_eq!(acked.len() as u64, REQUESTS);
    for uuid in &acked {
        assert!(replies_seen(&client, uuid) <= 1, "{uuid} answered twice");
    }
    let answered = acked
        .iter()
        .filter(|u| replies_seen(&client, u) == 1)
        .count();
    assert_eq!(answered as u64, REQUESTS);

    // Each restart found a clean journal or a torn tail, never mid-file damage.
    assert_eq!(titanic.count("corrupt stretch"), 0);
    assert_eq!(titanic.count("opened:"), KILLS + 1);
    titanic.interrupt_and_wait(WAIT);

    if compacting {
        assert!(
            titanic.count("journal compacted") > 0,
            "no compaction happened"
        );
    }
    // The journal reopens cleanly and holds at most one reply per request.
    let image = std::fs::read(&path).unwrap();
    let scan = journal::scan(&image).unwrap();
    assert!(scan.damage.is_empty(), "{:?}", scan.damage);
    let mut replies: HashMap<_, usize> = HashMap::new();
    for found in &scan.records {
        if let Record::Reply { id, .. } = &found.record {
            *replies.entry(*id).or_default() += 1;
        }
    }
    if !compacting {
        assert!(replies.len() >= REQUESTS as usize);
    }
    eprintln!(
        "{KILLS} kills: {} torn tails cut, {} requests journaled ({} acknowledged), client {summary}",
        titanic.count("torn tail"),
        scan.records.iter().filter(|f| matches!(f.record, Record::Request { .. })).count(),
        REQUESTS,
    );
    assert!(
        replies.values().all(|&n| n == 1),
        "a reply was stored twice"
    );
}
