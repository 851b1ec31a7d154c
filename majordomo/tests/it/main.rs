//! Process, socket and interop tests of the Majordomo crate (one test binary, several modules).

mod faults;
mod idempotence;
mod interop;
mod roundtrip;
mod scenario;
mod util;
