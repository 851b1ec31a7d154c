//! Binary Star with CURVE: both servers share one key pair (`--curve-secret`), each state link
//! verifies its peer with `--curve-server-key` (the pair's public key), and bstarcli uses that
//! one key for both servers. A peer holding another key is refused on the state link: its
//! state is never accepted.

use crate::util::{
    assert_all_answered, bstarsrv, server_args, summary, SETTLE_MS, TIMEOUT_MS, VOTE_MS, WAIT,
};
use common::curve::keys::KeyPair;
use common::testkit::{tcp_endpoint, IpcDir, Proc};

/// `--curve-secret` of `pair`, and `--curve-server-key` / `--curve-key` for the state link.
fn curve_args(dir: &IpcDir, name: &str, pair: &KeyPair, peer: &KeyPair) -> Vec<String> {
    let (_, secret) = pair.write_files(dir.path(), name).unwrap();
    let secret = secret.display().to_string();
    vec![
        "--curve-secret".into(),
        secret.clone(),
        "--curve-server-key".into(),
        peer.public.to_z85(),
        "--curve-key".into(),
        secret,
    ]
}

struct Pair {
    frontends: (String, String),
    pubs: (String, String),
}

impl Pair {
    fn new() -> Self {
        Self {
            frontends: (tcp_endpoint(), tcp_endpoint()),
            pubs: (tcp_endpoint(), tcp_endpoint()),
        }
    }

    fn primary(&self, curve: Vec<String>) -> Proc {
        let mut args = server_args("--primary", &self.frontends.0, &self.pubs.0, &self.pubs.1);
        args.extend(curve);
        Proc::spawn("primary", bstarsrv(), args)
    }

    fn backup(&self, curve: Vec<String>) -> Proc {
        let mut args = server_args("--backup", &self.frontends.1, &self.pubs.1, &self.pubs.0);
        args.extend(curve);
        Proc::spawn("backup", bstarsrv(), args)
    }
}

#[test]
fn a_pair_sharing_one_key_settles_over_curve_and_serves_curve_clients() {
    let dir = IpcDir::new();
    let pair_key = KeyPair::generate();
    let ep = Pair::new();
    let mut p = ep.primary(curve_args(&dir, "primary", &pair_key, &pair_key));
    let mut b = ep.backup(curve_args(&dir, "backup", &pair_key, &pair_key));
    p.wait_for("I: state ACTIVE", WAIT);
    // PASSIVE needs the primary's state, which only arrives over the CURVE state link.
    b.wait_for("I: state PASSIVE", WAIT);
    let args = [
        "--primary",
        &ep.frontends.0,
        "--backup",
        &ep.frontends.1,
        "--requests",
        "20",
        "--interval-ms",
        "20",
        "--timeout-ms",
        &TIMEOUT_MS.to_string(),
        "--settle-ms",
        &SETTLE_MS.to_string(),
        "--vote-ms",
        &VOTE_MS.to_string(),
        "--curve-server-key",
        &pair_key.public.to_z85(),
    ]
    .map(String::from);
    let mut client = Proc::spawn("client", env!("CARGO_BIN_EXE_bstarcli"), args);
    assert_all_answered(&summary(&mut client, WAIT), 20);
    assert_eq!(p.count("E: "), 0, "{:?}", p.lines());
    assert_eq!(b.count("E: "), 0, "{:?}", b.lines());
}

#[test]
fn a_peer_with_another_key_is_refused_on_the_state_link() {
    let dir = IpcDir::new();
    let (ours, impostor) = (KeyPair::generate(), KeyPair::generate());
    let ep = Pair::new();
    // The backup holds another key: the primary's state link must not take its state.
    let mut p = ep.primary(curve_args(&dir, "primary", &ours, &ours));
    let _b = ep.backup(curve_args(&dir, "impostor", &impostor, &ours));
    let line = p.wait_for("E: curve ", WAIT);
    assert!(
        line.contains(&ep.pubs.1) && line.contains(&format!("expected server key {}", ours.public)),
        "{line}"
    );
    // Alone as far as it knows, the primary serves (its peer is silent), and never settles
    // with the impostor.
    p.wait_for("peer silent", WAIT);
    assert_eq!(p.count("I: state PASSIVE"), 0);
}
