//! Integration tests of the Lazy Pirate binaries (one test binary, several modules).

mod accounting;
mod cli;
mod curve;
mod examples;
mod guard;
mod interop;
mod library;
mod process;
mod scenario;
mod util;
