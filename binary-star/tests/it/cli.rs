//! Command-line behaviour: role required, prompt and clean exit on Ctrl-C.

use crate::util::*;
use common::testkit::Proc;
use std::time::Duration;

const PROMPT: Duration = Duration::from_secs(1);

#[test]
fn bstarsrv_needs_a_role() {
    let mut s = Proc::spawn("bstarsrv", bstarsrv(), Vec::<String>::new());
    let status = s.wait_exit(WAIT).expect("exits");
    assert!(!status.success());
    s.wait_for("<--primary|--backup>", WAIT);
}

#[test]
fn both_programs_exit_promptly_on_sigint() {
    let ep = Endpoints::new();
    let (mut p, mut b) = settled_pair(&ep);
    let mut c = client(&ep, 1_000_000, 10);
    c.wait_for("server replied OK (3)", WAIT);

    let (status, _) = c.interrupt_and_wait(PROMPT);
    let s = summary(&mut c, WAIT);
    assert_eq!(s.lost(), 0, "{s}");
    // Only a request in flight at Ctrl-C may have failed; it then sets the exit code.
    assert!(s.failed <= 1, "{s}");
    assert_eq!(status.success(), s.failed == 0, "{s}");
    assert!(s.answered >= 3);

    for server in [&mut p, &mut b] {
        let (status, _) = server.interrupt_and_wait(PROMPT);
        assert!(status.success());
        server.wait_for("W: interrupted", WAIT);
    }
}
