//! Process, socket and interop tests of the Majordomo crate (one test binary, several modules).

mod accounting;
mod faults;
mod interop;
mod roundtrip;
mod scenario;
mod util;
