//! The Guide-sized examples (`examples/`) against the hardened binaries, both ways, with the
//! fault Freelance exists for: a server killed, the client served by another (or by the same one
//! once it is back).

use crate::util::{client, exit_code, replies_from, servers, BOUND};
use common::example;
use common::testkit::{tcp_endpoint, Proc};
use std::time::Duration;

#[test]
fn example_client1_fails_over_and_retries_real_servers() {
    let (mut procs, eps) = servers(1, 2);
    procs[0].kill9();
    // Two servers, the first dead: each is tried once, the second answers.
    let mut c = Proc::spawn("flclient1-example", example!("flclient1"), eps.clone());
    assert_eq!(exit_code(&mut c, BOUND), 0, "{}", c.lines().join("\n"));
    assert_eq!(c.count(&format!("W: no response from {}", eps[0])), 1);
    assert_eq!(c.count("Service is running OK"), 1);

    // One server, dead at first: retried until it is back.
    let mut c = Proc::spawn("flclient1-example", example!("flclient1"), [&eps[0]]);
    c.wait_for(&format!("W: no response from {}, retrying", eps[0]), BOUND);
    procs[0].restart();
    procs[0].wait_for("ready on", BOUND);
    assert_eq!(exit_code(&mut c, BOUND), 0, "{}", c.lines().join("\n"));
    assert_eq!(c.count("Service is running OK"), 1);
}

#[test]
fn real_client1_uses_the_next_example_server_when_one_is_killed() {
    let server = |endpoint: &String| {
        let mut s = Proc::spawn("flserver1-example", example!("flserver1"), [endpoint]);
        s.wait_for("I: echo service is ready at", BOUND);
        s
    };
    let eps = [tcp_endpoint(), tcp_endpoint()];
    let (mut first, _second) = (server(&eps[0]), server(&eps[1]));
    let args = [
        "--requests",
        "10",
        "--interval-ms",
        "100",
        "--timeout-ms",
        "500",
    ];
    let mut c = client(1, &eps, &args);
    c.wait_for(&format!("reply 3 from {}:", eps[0]), BOUND);
    first.kill9();
    assert_eq!(exit_code(&mut c, Duration::from_secs(60)), 0);
    let s = c.summary().expect("a summary line");
    assert_eq!((s.sent, s.answered, s.failed), (10, 10, 0));
    assert!(replies_from(&c, &eps[1]) >= 1);
}

#[test]
fn example_client3_fails_over_when_a_real_server_is_killed() {
    let (mut procs, eps) = servers(3, 3);
    let mut c = Proc::spawn("flclient3-example", example!("flclient3"), eps.clone());
    c.wait_for("I: 1000 replies", BOUND);
    procs[0].kill9();
    assert_eq!(
        exit_code(&mut c, Duration::from_secs(120)),
        0,
        "{}",
        c.lines().join("\n")
    );
    assert_eq!(c.count("I: 10000 replies"), 1);
    assert_eq!(c.count("Average round trip cost"), 1);
}

#[test]
fn real_client3_fails_over_when_an_example_server_is_killed() {
    let server = |endpoint: &String| {
        let mut s = Proc::spawn("flserver3-example", example!("flserver3"), [endpoint]);
        s.wait_for("I: service is ready at", BOUND);
        s
    };
    let eps = [tcp_endpoint(), tcp_endpoint(), tcp_endpoint()];
    let mut procs: Vec<Proc> = eps.iter().map(server).collect();
    let mut c = client(3, &eps, &["--requests", "40", "--interval-ms", "25"]);
    c.wait_for(&format!("reply 10 from {}:", eps[0]), BOUND);
    procs[0].kill9();
    assert_eq!(exit_code(&mut c, Duration::from_secs(60)), 0);
    let s = c.summary().expect("a summary line");
    assert_eq!((s.sent, s.answered, s.failed), (40, 40, 0));
    assert_eq!(c.count(&format!("server {} dead", eps[0])), 1);
    assert_eq!(c.count(&format!("reply 40 from {}:", eps[1])), 1);
}
