//! The state SUB keeps working when the peer starts late or is killed and restarted after a
//! long outage (the `zeromq` crate's own reconnect back-off would grow to seconds).

use crate::util::*;
use std::time::{Duration, Instant};

/// How soon a server must hear a peer that just bound its PUB: a few heartbeats, generously.
const HEAR_WITHIN: Duration = Duration::from_millis(2000);

#[test]
fn a_peer_that_starts_late_is_heard_promptly() {
    let ep = Endpoints::new();
    let mut p = primary(&ep);
    p.wait_for("peer silent", WAIT);
    // Nothing is listening on the backup's PUB for a while: connect attempts keep failing.
    // Deliberate: the 3 s outage is what the test is about (the zeromq crate's own back-off
    // would have grown long by then).
    std::thread::sleep(Duration::from_millis(3000));
    assert_eq!(
        p.count("subscribed to the peer state"),
        0,
        "{:?}",
        p.lines()
    );
    let mut b = backup(&ep);
    b.wait_for("backup ready", WAIT);
    let ready = Instant::now();
    p.wait_for("I: peer is", WAIT);
    let heard = ready.elapsed();
    eprintln!("heard the peer {heard:?} after it was ready");
    assert!(
        heard <= HEAR_WITHIN,
        "primary heard the backup {heard:?} after it was ready"
    );
    p.wait_for("I: state ACTIVE", WAIT);
    b.wait_for("I: state PASSIVE", WAIT);
}

#[test]
fn a_peer_killed_and_restarted_after_a_long_outage_is_heard_again() {
    let ep = Endpoints::new();
    let (mut p, mut b) = settled_pair(&ep);
    b.kill9();
    p.wait_for("lost the peer state connection", WAIT);
    p.wait_for("peer silent", WAIT);
    // Deliberate: the long outage the test is about, before the restart.
    std::thread::sleep(Duration::from_millis(3500));
    b.restart();
    b.wait_for("backup ready", WAIT);
    let ready = Instant::now();
    p.wait_for("peer is back (", WAIT);
    let heard = ready.elapsed();
    eprintln!("heard the peer {heard:?} after it was ready");
    assert!(
        heard <= HEAR_WITHIN,
        "primary heard the backup {heard:?} after it was ready"
    );
    b.wait_for("I: state PASSIVE", WAIT);
    assert_eq!(p.count("I: state "), 1, "{:?}", p.lines());

    // And the pair still fails over: the restarted backup hears the primary die.
    let mut c = client(&ep, 30, 20);
    c.wait_for("server replied OK (3)", WAIT);
    p.kill9();
    b.wait_for("I: state ACTIVE", WAIT);
    assert_all_answered(&summary(&mut c, WAIT), 30);
}
