//! Majordomo (7/MDP, MDP/0.1) with the Management Interface (8/MMI): a service-oriented broker,
//! and the client and worker APIs to use it. The same broker socket also speaks MDP/0.2
//! (18/MDP: replies streamed as PARTIALs and a FINAL) in the two framings found in the wild,
//! RFC 18's and majortomo's; [`protocol`] has the detection rule and every frame.
//!
//! # Reading order
//! Each role is a pure core in `<role>.rs` (no sockets, no clock: [`common::contract`]) and its
//! tokio loop in `<role>_loop.rs`; the APIs users hold ([`Client`], [`Worker`], [`Server`], …)
//! are re-exported here.
//! 1. `examples/mdbroker.rs`, then `examples/mdapi/` (the worker and client APIs): the Guide's
//!    programs, shorter.
//! 2. [`Broker::handle_message`](broker::Broker::handle_message): every MDP command from clients
//!    and workers, down to the dispatch of a request to a waiting worker of its service.
//! 3. [`WorkerCore`](worker::WorkerCore)`::handle_timeout` (heartbeats, the broker's
//!    liveness, reconnect) and [`Client::send`] (a retried request on [`common::retry`]).
//!
//! | module | what it holds |
//! |---|---|
//! | [`protocol`] | MDP frames ⇄ typed [`ClientCommand`](protocol::ClientCommand) / [`WorkerCommand`](protocol::WorkerCommand) in each [`Dialect`](protocol::Dialect) (0.1, RFC 18, majortomo), the dialect of a received message ([`Received`](protocol::Received)), typed [`ProtocolError`](protocol::ProtocolError), MMI constants |
//! | [`broker`] | the broker's pure core [`Broker`](broker::Broker) (a [`Core`](common::contract::Core)): services, expiring queues, workers with expiry and purge on disconnect, dispatch, peers that do not read paused ([`STUCK_PAUSE`](broker::STUCK_PAUSE)); clock passed in, typed [`Event`](broker::Event)s out |
//! | [`broker::fair`] | one service's waiting requests: a FIFO per client served round-robin, bounded by bytes, compact entries |
//! | [`broker::stream`] | streamed replies in the broker: the parts a request delivered ([`Parts`](broker::stream::Parts)), the bridging rule for 0.1 clients (concatenation, bounded), reruns without repeated parts, whole streams for retries |
//! | [`broker::dedup`] | the broker's pure request-id store: a retry joins its running request or gets the remembered reply (bounded by count and age) |
//! | [`mmi`] | 8/MMI replies and this broker's extensions (`mmi.services`, `mmi.workers`, `mmi.broker`, `mmi.pair`): the broker's answers from its tables, typed rows, and their tables |
//! | [`broker_loop`] | the broker's I/O loop [`Server`]: one ROUTER ([`broker_loop::Front`]: the native guarded one on a guarded `tcp://` endpoint, zeromq's otherwise), bounded sends (a blocked one reported to the core), batched receives, disconnect events, the core's events as throttled log lines |
//! | [`ha`] | one broker of a pair: the broker core under a Binary Star node ([`PairedBroker`](ha::PairedBroker)): only the ACTIVE one dispatches, a client request at the PASSIVE one is dropped or is the vote, a fenced broker stands down |
//! | [`pair`] | a broker pair on Binary Star: the standings and news between the brokers and their workers ([`Standing`](pair::Standing), [`PairFrames`](pair::PairFrames)), the worker's fence |
//! | [`worker`] | the worker's pure core [`WorkerCore`](worker::WorkerCore): sessions, READY, heartbeats, the broker's liveness, back-off, DISCONNECT, stale replies; clock passed in; the worker's settings [`WorkerOptions`] and the [`Request`] it hands over |
//! | [`worker::brokers`] | the pure core above one [`WorkerCore`](worker::WorkerCore) per broker, [`Brokers`](worker::brokers::Brokers): up to the worker's credit in hand at once, and for a broker pair the fence, the running/answered news and their replay |
//! | [`worker_loop`] | the worker API [`Worker`]: streamed replies ([`Worker::partial`], [`run_streaming`](Worker::run_streaming)) in any dialect, READY, heartbeats in the background (also while a request is handled), reconnect with back-off, DISCONNECT on shutdown, one broker or the two of a pair ([`Worker::with_brokers`]); its engine is a [`common::session::Session`] per broker driven by the cores |
//! | [`client`] | the client's pure parts: [`ClientOptions`], [`PairOptions`], the Guide's defaults, and the schedule of a retried request (one broker's attempts, or a pair's turns by Binary Star's client plan) that [`common::retry`] runs |
//! | [`client::pair`] | the pipelined pair client's pure core [`PairCore`](client::pair::PairCore): outstanding requests by id, failover on silence, votes, resends, give-ups, duplicates dropped |
//! | [`client::stream`] | a streamed request's pure core [`StreamCore`](client::stream::StreamCore): the timeout per part, attempts, the parts a retry repeats skipped; [`Part`] |
//! | [`client_loop`] | the client APIs: [`Client`]: synchronous, retried on a fresh socket (mdcliapi); [`AsyncClient`]: pipelined (mdcliapi2); both fail over between a broker pair (`new_pair`); the shared flags [`ClientArgs`], [`BrokerArgs`] |
//! | [`client_loop::stream`] | [`StreamClient`]: a reply consumed part by part; [`AsyncStreamClient`]: pipelined, each part tagged with its request, the timeout per part |
//! | [`credit`] | worker credit: the opt-in READY frame by which a worker takes several requests at once, its bounds ([`credit::MAX`]) and the broker's grant |
//! | [`rid`] | request ids (Guide 4.11): [`Rid`](rid::Rid), the opt-in rid frame, [`RidSource`](rid::RidSource) |
//!
//! Binaries: `mdbroker`, `mdworker` (echo), `mdclient` (sync), `mdclient2` (async), `mmiecho`
//! (MMI lookup), `mdadmin` (service/worker tables), `mdbench` (benchmark). Each documents the
//! log lines it guarantees.
//!
//! # Using the APIs
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use common::Message;
//! use majordomo::{Client, ClientOptions, Worker, WorkerOptions};
//!
//! // A worker: answers "echo" requests until shut down.
//! let mut worker = Worker::new("tcp://localhost:5555", "echo", WorkerOptions::default())?;
//! tokio::spawn(async move { worker.run(|body| async move { body }).await });
//!
//! // A client: one request, up to 3 attempts of 2.5 s.
//! let mut client = Client::new("tcp://localhost:5555", ClientOptions::default())?;
//! let reply: Message = client.send("echo", Message::from_frames(["hello"])).await?;
//! let up: bool = client.service_available("echo").await?; // mmi.service → 200
//! # Ok(()) }
//! ```

pub mod broker;
pub mod broker_loop;
pub mod client;
pub mod client_loop;
pub mod credit;
pub mod ha;
pub mod mmi;
pub mod pair;
pub mod protocol;
pub mod rid;
pub mod worker;
pub mod worker_loop;

pub use broker_loop::{PairConfig, Server, ServerError};
pub use client::stream::Part;
pub use client::{ClientOptions, PairOptions};
pub use client_loop::stream::{AsyncStreamClient, ReplyStream, StreamClient};
pub use client_loop::{Answer, AsyncClient, Client, ClientError};
#[cfg(feature = "cli")]
pub use client_loop::{BrokerArgs, ClientArgs};
pub use worker::{ReplyTo, Request, WorkerOptions};
pub use worker_loop::{PartSender, Worker, WorkerError};
