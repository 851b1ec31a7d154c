//! Kill -9 the active server: the other takes over on the next client request after the peer
//! expired, and the client sees every request answered.

use crate::util::*;
use std::time::Duration;

#[test]
fn killing_the_active_primary_fails_over_to_the_backup_and_nothing_is_lost() {
    let ep = Endpoints::new();
    let (mut p, mut b) = settled_pair(&ep);
    let requests = 60;
    let mut c = client(&ep, requests, 20);
    c.wait_for("server replied OK (5)", WAIT);
    p.kill9();

    // The backup takes over by the client vote, once the primary has expired.
    b.wait_for("peer silent", WAIT);
    let line = b.wait_for("I: state ACTIVE", WAIT);
    assert!(line.contains("failover successful"), "{line}");

    let line = c.wait_for(&format!("failover to {} after", ep.backup_frontend), WAIT);
    let seen = failover_ms(&line);
    assert!(
        seen <= failover_bound(),
        "client waited {seen:?}, more than {:?}: {line}",
        failover_bound()
    );
    let s = summary(&mut c, WAIT);
    assert_all_answered(&s, requests);
    assert_eq!(c.count("failover to"), 1, "{:?}", c.lines());
    assert_eq!(b.count("fatal"), 0);
}

#[test]
fn a_restarted_primary_comes_up_passive_and_takes_over_when_the_backup_dies() {
    let ep = Endpoints::new();
    let (mut p, mut b) = settled_pair(&ep);
    let requests = 250;
    let mut c = client(&ep, requests, 20);
    c.wait_for("server replied OK (5)", WAIT);

    p.kill9();
    b.wait_for("I: state ACTIVE", WAIT);
    c.wait_for(&format!("failover to {}", ep.backup_frontend), WAIT);

    // Recovery is manual: the restarted primary stands by.
    p.restart();
    // kill -9 left the ipc socket files behind; the restarted server clears them.
    p.wait_for("removed the stale socket file", WAIT);
    let line = p.wait_for("I: state ", WAIT);
    assert!(line.contains("I: state PASSIVE"), "{line}");
    // The backup hears the new primary on its own state SUB.
    b.wait_for("peer is back (", WAIT);

    b.kill9();
    p.wait_for("peer silent", WAIT);
    let line = p.wait_for("I: state ACTIVE", WAIT);
    assert!(line.contains("failover successful"), "{line}");
    let line = c.wait_for(&format!("failover to {} after", ep.primary_frontend), WAIT);
    assert!(failover_ms(&line) <= failover_bound(), "{line}");

    let s = summary(&mut c, Duration::from_secs(30));
    assert_all_answered(&s, requests);
    assert_eq!(c.count("failover to"), 2, "{:?}", c.lines());
}

#[test]
fn the_guide_client_strategy_also_fails_over_without_loss() {
    let ep = Endpoints::new();
    let (mut p, mut b) = settled_pair(&ep);
    let requests = 40;
    let mut args: Vec<String> = [
        "--primary",
        &ep.primary_frontend,
        "--backup",
        &ep.backup_frontend,
        "--requests",
        &requests.to_string(),
        "--interval-ms",
        "20",
        "--timeout-ms",
        &TIMEOUT_MS.to_string(),
        "--settle-ms",
        &SETTLE_MS.to_string(),
    ]
    .map(String::from)
    .to_vec();
    args.extend(["--strategy".into(), "guide".into()]);
    let mut c = common::testkit::Proc::spawn("client", env!("CARGO_BIN_EXE_bstarcli"), args);
    c.wait_for("server replied OK (5)", WAIT);
    p.kill9();
    b.wait_for("I: state ACTIVE", WAIT);
    let line = c.wait_for("failover to", WAIT);
    // The reference client always waits out the timeout and the settle delay.
    let seen = failover_ms(&line);
    assert!(
        seen >= Duration::from_millis(TIMEOUT_MS + SETTLE_MS),
        "{line}"
    );
    assert!(seen <= failover_bound(), "{line}");
    let s = summary(&mut c, WAIT);
    assert_all_answered(&s, requests);
}
