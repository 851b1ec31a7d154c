//! SIGSTOP past the peer expiry, then SIGCONT: the dual-active rule, and the stall rule that
//! makes the *frozen* server the one that gives way.
//!
//! What happens: the client times out on the frozen primary and votes at the backup; once the
//! primary has been silent for the expiry the backup takes over (a new epoch) and serves. When
//! the primary wakes it notices its own heartbeat is late, so before publishing or serving
//! anything it listens to the backup and reads ACTIVE in the newer epoch. By default it steps
//! down to PASSIVE and stays up; under `--on-conflict abort` (the Guide's rule) it aborts with
//! `E: fatal error - dual actives, aborting` (exit status 2). Either way the backup never sees
//! the primary's ACTIVE, keeps serving, and the client loses nothing. At no point do both
//! servers serve.

use crate::util::*;
use std::time::Duration;

/// Freezes the active primary until the backup took over and served, then wakes it.
fn freeze_primary_until_the_backup_serves(
    ep: &Endpoints,
    p: &mut common::testkit::Proc,
    b: &mut common::testkit::Proc,
    c: &mut common::testkit::Proc,
) {
    c.wait_for("server replied OK (5)", WAIT);
    p.stop();
    b.wait_for("peer silent", WAIT);
    let line = b.wait_for("I: state ACTIVE", WAIT);
    assert!(line.contains("failover successful"), "{line}");
    assert!(line.ends_with("(epoch 2)"), "{line}");
    c.wait_for(&format!("failover to {}", ep.backup_frontend), WAIT);
    // Let the backup serve a few requests and publish ACTIVE a few times.
    c.mark();
    c.wait_for("server replied OK", WAIT);
    c.wait_for("server replied OK", WAIT);
    p.cont();
    p.wait_for("W: stalled", WAIT);
}

#[test]
fn a_frozen_active_primary_steps_down_on_waking_and_the_backup_keeps_serving() {
    let ep = Endpoints::new();
    let (mut p, mut b) = settled_pair(&ep);
    let requests = 120;
    let mut c = client(&ep, requests, 20);
    freeze_primary_until_the_backup_serves(&ep, &mut p, &mut b, &mut c);
    let line = p.wait_for("I: state PASSIVE", WAIT);
    assert!(line.contains("dual actives resolved"), "{line}");
    p.wait_for("resumed after stall", WAIT);
    b.wait_for("peer is back (PASSIVE)", WAIT);

    let s = summary(&mut c, Duration::from_secs(30));
    assert_all_answered(&s, requests);
    assert!(
        p.wait_exit(Duration::from_millis(100)).is_none(),
        "the primary stays up"
    );
    assert_eq!(p.count("fatal") + b.count("fatal"), 0);
    assert_eq!(b.count("I: state "), 2, "{:?}", b.lines());
    assert_eq!(c.count("failover to"), 1, "{:?}", c.lines());
}

#[test]
fn under_the_guides_rule_a_frozen_active_primary_aborts_on_waking() {
    let ep = Endpoints::new();
    let mut p = common::testkit::Proc::spawn(
        "primary",
        bstarsrv(),
        [
            ep.primary_args(),
            vec!["--on-conflict".into(), "abort".into()],
        ]
        .concat(),
    );
    let mut b = common::testkit::Proc::spawn(
        "backup",
        bstarsrv(),
        [
            ep.backup_args(),
            vec!["--on-conflict".into(), "abort".into()],
        ]
        .concat(),
    );
    p.wait_for("I: state ACTIVE", WAIT);
    b.wait_for("I: state PASSIVE", WAIT);
    let requests = 120;
    let mut c = client(&ep, requests, 20);
    freeze_primary_until_the_backup_serves(&ep, &mut p, &mut b, &mut c);
    p.wait_for("E: fatal error - dual actives, aborting", WAIT);
    let status = p.wait_exit(WAIT).expect("the frozen primary exits");
    assert_eq!(status.code(), Some(2));
    // It never served or published again after waking.
    assert_eq!(p.count("resumed after stall"), 0, "{:?}", p.lines());

    let s = summary(&mut c, Duration::from_secs(30));
    assert_all_answered(&s, requests);
    assert_eq!(b.count("fatal"), 0, "{:?}", b.lines());
    assert_eq!(b.count("I: state "), 2, "{:?}", b.lines());
    assert_eq!(c.count("failover to"), 1, "{:?}", c.lines());
}

#[test]
fn a_frozen_passive_backup_wakes_up_passive() {
    let ep = Endpoints::new();
    let (mut p, mut b) = settled_pair(&ep);
    b.stop();
    p.wait_for("peer silent", WAIT);
    b.cont();
    b.wait_for("W: stalled", WAIT);
    b.wait_for("resumed after stall", WAIT);
    p.wait_for("peer is back (PASSIVE)", WAIT);
    let mut c = client(&ep, 5, 0);
    assert_all_answered(&summary(&mut c, WAIT), 5);
    assert_eq!(c.count("failover to"), 0);
    assert_eq!(b.count("I: state "), 1, "{:?}", b.lines());
    assert_eq!(p.count("fatal") + b.count("fatal"), 0);
}
