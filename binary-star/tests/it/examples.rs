//! The Guide-sized examples (`examples/bstar*.rs`) against the hardened binaries, both ways and
//! in a mixed pair, each through the fault Binary Star exists for: the active primary dies.

use crate::util::*;
use common::example;
use common::testkit::Proc;

fn example_primary(ep: &Endpoints) -> Proc {
    let args = ["-p", &ep.primary_frontend, &ep.primary_pub, &ep.backup_pub];
    Proc::spawn("bstarsrv example -p", example!("bstarsrv"), args)
}

fn example_backup(ep: &Endpoints) -> Proc {
    let args = ["-b", &ep.backup_frontend, &ep.backup_pub, &ep.primary_pub];
    Proc::spawn("bstarsrv example -b", example!("bstarsrv"), args)
}

/// The example client: `requests` requests, one a second.
fn example_client(ep: &Endpoints, requests: u64) -> Proc {
    let args = [
        ep.primary_frontend.clone(),
        ep.backup_frontend.clone(),
        requests.to_string(),
    ];
    Proc::spawn("bstarcli example", example!("bstarcli"), args)
}

/// Waits for the example client to answer all `requests` in order, with one failover.
fn assert_example_client_done(client: &mut Proc, requests: u64) {
    let status = client
        .wait_exit(WAIT * 2)
        .expect("the example client finishes");
    assert!(status.success(), "{:?}", client.lines());
    for n in 1..=requests {
        assert_eq!(client.count(&format!("server replied OK ({n})")), 1, "{n}");
    }
    assert_eq!(client.count("failing over"), 1, "{:?}", client.lines());
}

#[test]
fn example_client_fails_over_between_hardened_servers() {
    let ep = Endpoints::new();
    let (mut primary, mut backup) = settled_pair(&ep);
    let mut client = example_client(&ep, 6);
    client.wait_for("server replied OK (2)", WAIT);
    primary.kill9();
    backup.wait_for("failover successful", WAIT);
    assert_example_client_done(&mut client, 6);
}

#[test]
fn hardened_client_fails_over_between_example_servers() {
    let ep = Endpoints::new();
    let mut primary = example_primary(&ep);
    let mut backup = example_backup(&ep);
    primary.wait_for("ready active", WAIT);
    backup.wait_for("ready passive", WAIT);
    let requests = 40;
    let mut c = client(&ep, requests, 50);
    c.wait_for("server replied OK (5)", WAIT);
    primary.kill9();
    backup.wait_for("failover successful, ready active", WAIT);
    let s = summary(&mut c, WAIT * 2);
    assert_all_answered(&s, requests);
    assert_eq!(backup.count("fatal"), 0);
    assert!(
        backup.interrupt_and_wait(WAIT).0.success(),
        "Ctrl-C stops the example server"
    );
}

#[test]
fn a_mixed_pair_agrees_on_states_and_the_example_backup_takes_over() {
    let ep = Endpoints::new();
    // The hardened primary at the Guide's heartbeat, the example's.
    let mut args = ep.primary_args();
    let hb = args
        .iter()
        .position(|a| a == "--heartbeat-ms")
        .expect("a heartbeat flag");
    args[hb + 1] = "1000".to_owned();
    let mut primary = Proc::spawn("primary", bstarsrv(), args);
    let mut backup = example_backup(&ep);
    primary.wait_for("I: state ACTIVE", WAIT);
    backup.wait_for("connected to primary (active), ready passive", WAIT);
    let mut client = example_client(&ep, 5);
    client.wait_for("server replied OK (2)", WAIT);
    primary.kill9();
    backup.wait_for("failover successful, ready active", WAIT);
    assert_example_client_done(&mut client, 5);
}
