//! A TCP fault proxy: put it between a client and a server to cut, delay, throttle or reset the
//! link while both run, as a network would, not as a process crash would.
//!
//! Process faults (kill -9, SIGSTOP) are reported at once on loopback: the kernel sends FIN or RST.
//! The failure heartbeats exist for is a *silent* one: a cable pull, a switch failing. Nothing is
//! reported, connects hang, and whatever was queued arrives late once the link heals. [`Proxy`]
//! relays plain TCP bytes (it knows nothing of ZMTP) and can be switched at any time between the
//! [`Fault`]s:
//!
//! ```text
//! client ──► proxy.local_addr() ══ Pass / Partition / OneWay / Delay / Throttle ══► upstream
//!        ◄──                    ══                (and Reset: RST both ends)   ══◄
//! ```
//!
//! Guarantees: bytes it has accepted are never lost, duplicated or reordered; held bytes are
//! bounded per connection ([`MAX_HELD`] per direction), past which it stops reading so the
//! sender's kernel buffers fill and its writes block, as on a real network; a partition closes
//! nothing (no FIN, no RST either way) and a connection made during one hangs until it heals.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use common::netfault::{Command, Fault, Proxy};
//! let proxy = Proxy::start("127.0.0.1:0".parse().unwrap(), "127.0.0.1:5555".parse().unwrap()).await?;
//! // … point the client at proxy.local_addr() …
//! proxy.apply(Command::Set(Fault::Partition)); // the cable is pulled
//! proxy.apply("heal".parse().unwrap());        // and plugged back: held bytes flow
//! # Ok(()) }
//! ```
//!
//! | module | what it holds |
//! |---|---|
//! | `command` | [`Fault`], [`Direction`], [`Command`] and their one-line text form (`partition up`, `delay 200`) |
//! | `pipe` | the pure core: one direction's queue and what may leave it at `now` ([`Pipe`]) |
//! | `proxy` | the tokio shell: listener, per-connection tasks, [`Proxy`] |
//!
//! The binary `netfault` (in this crate) drives a [`Proxy`] from stdin, one command per line.

mod command;
mod pipe;
mod proxy;

pub use command::{Command, Direction, Fault, ParseCommandError};
pub use pipe::{End, Flow, Pipe, Step, MAX_HELD};
pub use proxy::Proxy;
