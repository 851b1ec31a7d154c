//! Process tests of Titanic: the real `mdbroker`, `mdworker`, `titanic` and `ticlient`
//! binaries, killed and restarted, checked from the outside with a libzmq MDP client.
//!
//! Needs the majordomo binaries: `cargo build -p majordomo` (a workspace test run builds them).

mod accounting;
mod crash;
mod damage;
mod examples;
mod idempotence;
mod pair;
mod scenario;
mod status;
mod support;
