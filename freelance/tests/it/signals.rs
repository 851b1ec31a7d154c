//! Every program exits promptly and cleanly on SIGINT (Ctrl-C).

use crate::util::{bin, client, nobody, BOUND};
use common::testkit::{tcp_endpoint, Proc};
use std::time::Duration;

/// Generous for CI; the programs themselves stop in milliseconds.
const PROMPTLY: Duration = Duration::from_secs(2);

#[test]
fn servers_exit_cleanly_on_sigint() {
    for model in 1..=3u8 {
        let ep = tcp_endpoint();
        let name = format!("flserver{model}");
        let args = if model == 3 {
            vec!["--bind".to_owned(), ep]
        } else {
            vec![ep]
        };
        let mut server = Proc::spawn(&name, bin(&name), args);
        server.wait_for("ready on", BOUND);
        let (status, took) = server.interrupt_and_wait(BOUND);
        assert_eq!(status.code(), Some(0), "{name}");
        assert!(took < PROMPTLY, "{name} took {took:?}");
        assert_eq!(server.count("W: interrupted"), 1, "{name}");
    }
}

#[test]
fn clients_waiting_on_dead_servers_exit_cleanly_on_sigint() {
    let (_dir, eps) = nobody(1);
    let ep = &eps[0];
    for (model, args) in [
        (1, ["--timeout-ms", "30000"]),
        (2, ["--timeout-ms", "30000"]),
        (3, ["--timeout-ms", "30000"]),
    ] {
        let mut c = client(model, std::slice::from_ref(ep), &args);
        c.wait_for("sending", BOUND); // Ctrl-C is handled from this line on
        let (status, took) = c.interrupt_and_wait(BOUND);
        // The request in flight counts failed, so the run failed.
        assert_eq!(status.code(), Some(1), "flclient{model}");
        assert!(took < PROMPTLY, "flclient{model} took {took:?}");
        assert_eq!(c.count("W: interrupted"), 1, "flclient{model}");
        assert_eq!(c.count("summary sent="), 1, "flclient{model}");
        let s = c.summary().expect("a summary line");
        assert_eq!((s.sent, s.answered, s.failed), (1, 0, 1), "flclient{model}");
    }
}
