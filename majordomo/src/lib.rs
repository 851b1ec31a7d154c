//! Majordomo (7/MDP, MDP/0.1) with the Management Interface (8/MMI): a service-oriented broker,
//! and the client and worker APIs to use it. The same broker socket also speaks MDP/0.2
//! (18/MDP: replies streamed as PARTIALs and a FINAL) in the two framings found in the wild,
//! RFC 18's and majortomo's; [`protocol`] has the detection rule and every frame.
//!
//! # Reading order
//! 1. `examples/mdbroker.rs`, then `examples/mdapi/` (the worker and client APIs): the Guide's
//!    programs, shorter.
//! 2. [`Broker::handle_message`](broker::Broker::handle_message): every MDP command from clients
//!    and workers, down to the dispatch of a request to a waiting worker of its service.
//! 3. [`WorkerCore`](worker::core::WorkerCore)`::handle_timeout` (heartbeats, the broker's
//!    liveness, reconnect) and [`Client::send`](client::Client::send) (a retried request on
//!    [`common::retry`]).
//!
//! | module | what it holds |
//! |---|---|
//! | [`protocol`] | MDP frames ⇄ typed [`ClientCommand`](protocol::ClientCommand) / [`WorkerCommand`](protocol::WorkerCommand) in each [`Dialect`](protocol::Dialect) (0.1, RFC 18, majortomo), the dialect of a received message ([`Received`](protocol::Received)), typed [`ProtocolError`](protocol::ProtocolError), MMI constants |
//! | [`client`] | [`Client`](client::Client): synchronous, retried on a fresh socket (mdcliapi); [`AsyncClient`](client::AsyncClient): pipelined (mdcliapi2); both fail over between a broker pair (`new_pair`) |
//! | [`client::stream`] | [`StreamClient`](client::stream::StreamClient): a reply consumed part by part; [`AsyncStreamClient`](client::stream::AsyncStreamClient): pipelined, each part tagged with its request ([`Part`](client::stream::Part)), the timeout per part; its pure core [`StreamCore`](client::stream::StreamCore) skips the parts a retry repeats |
//! | [`client::pair`] | the pipelined pair client's pure core [`PairCore`](client::pair::PairCore): outstanding requests by id, failover on silence, votes, resends, give-ups, duplicates dropped |
//! | [`pair`] | a broker pair on Binary Star: the standings and news between the brokers and their workers ([`Standing`](pair::Standing), [`PairFrames`](pair::PairFrames)), the worker's fence |
//! | [`credit`] | worker credit: the opt-in READY frame by which a worker takes several requests at once, its bounds ([`credit::MAX`]) and the broker's grant |
//! | [`rid`] | request ids (Guide 4.11): [`Rid`](rid::Rid), the opt-in rid frame, [`RidSource`](rid::RidSource) |
//! | [`worker`] | [`Worker`](worker::Worker): streamed replies ([`Worker::partial`](worker::Worker::partial), [`run_streaming`](worker::Worker::run_streaming)) in any dialect, READY, heartbeats in the background (also while a request is handled), reconnect with back-off, DISCONNECT on shutdown, one broker or the two of a pair ([`Worker::with_brokers`](worker::Worker::with_brokers)); its engine is a [`common::session::Session`] per broker driven by the cores |
//! | [`worker::core`] | the worker's pure core [`WorkerCore`](worker::core::WorkerCore): sessions, READY, heartbeats, the broker's liveness, back-off, DISCONNECT, stale replies; clock passed in |
//! | [`worker::brokers`] | the pure core above one [`WorkerCore`](worker::core::WorkerCore) per broker, [`Brokers`](worker::brokers::Brokers): up to the worker's credit in hand at once, and for a broker pair the fence, the running/answered news and their replay |
//! | [`broker`] | the broker's pure core [`Broker`](broker::Broker) (a [`Core`](common::contract::Core)): services, expiring queues, workers with expiry and purge on disconnect, dispatch, MMI; clock passed in, typed [`Event`](broker::Event)s out |
//! | [`broker::fair`] | one service's waiting requests: a FIFO per client served round-robin, bounded by bytes, compact entries |
//! | [`broker::stream`] | streamed replies in the broker: the parts a request delivered ([`Parts`](broker::stream::Parts)), the bridging rule for 0.1 clients (concatenation, bounded), reruns without repeated parts, whole streams for retries |
//! | [`broker::dedup`] | the broker's pure request-id store: a retry joins its running request or gets the remembered reply (bounded by count and age) |
//! | [`ha`] | one broker of a pair: the broker core under a Binary Star node ([`PairedBroker`](ha::PairedBroker)): only the ACTIVE one dispatches, a client request at the PASSIVE one is dropped or is the vote, a fenced broker stands down |
//! | [`mmi`] | 8/MMI replies and this broker's extensions (`mmi.services`, `mmi.workers`, `mmi.broker`) as typed rows, and their tables |
//! | [`server`] | the broker's I/O loop [`Server`](server::Server): one ROUTER ([`server::Front`]: the native guarded one on a guarded `tcp://` endpoint, zeromq's otherwise), bounded sends, batched receives, disconnect events, the core's events as throttled log lines |
//!
//! Binaries: `mdbroker`, `mdworker` (echo), `mdclient` (sync), `mdclient2` (async), `mmiecho`
//! (MMI lookup), `mdadmin` (service/worker tables), `mdbench` (benchmark). Each documents the
//! log lines it guarantees.
//!
//! # Using the APIs
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use common::Message;
//! use majordomo::client::{Client, ClientOptions};
//! use majordomo::worker::{Worker, WorkerOptions};
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
pub mod client;
pub mod credit;
pub mod ha;
pub mod mmi;
pub mod pair;
pub mod protocol;
pub mod rid;
pub mod server;
pub mod worker;
