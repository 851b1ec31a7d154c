//! Process tests of `bstarsrv` and `bstarcli` (one test binary for the crate).

mod accounting;
mod cli;
mod failover;
mod interop;
mod link;
mod protocol;
mod scenario;
mod stall;
mod start_order;
mod util;
