//! Process tests of `bstarsrv` and `bstarcli` (one test binary for the crate).

mod accounting;
mod cli;
mod curve;
mod examples;
mod failover;
mod guard;
mod interop;
mod link;
mod partition;
mod protocol;
mod scenario;
mod stall;
mod start_order;
mod util;
