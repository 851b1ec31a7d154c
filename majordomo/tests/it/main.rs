//! Process, socket and interop tests of the Majordomo crate (one test binary, several modules).

mod accounting;
mod credit;
mod curve;
mod examples;
mod failover;
mod faults;
mod guard;
mod idempotence;
mod interop;
mod load;
mod majortomo;
mod mdp02;
mod native;
mod roundtrip;
mod scenario;
mod util;
