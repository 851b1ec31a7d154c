//! Integration tests of the Simple Pirate binaries (one test binary, several modules).
//! They use lazy-pirate's `lpclient` as the client: `cargo build -p lazy-pirate` first
//! (`cargo test --workspace` builds it anyway).

mod bad_input;
mod cli;
mod examples;
mod guard;
mod interop;
mod process;
mod scenario;
mod util;
