//! The three servers: one ROUTER loop, three ways to answer.
//!
//! | model | program | answer |
//! |---|---|---|
//! | [`Model::Echo`] | `flserver1` | the request itself (REP echo) |
//! | [`Model::Sequence`] | `flserver2` | `[sequence, "OK"]` |
//! | [`Model::Flp`] | `flserver3` | 10/FLP: `PONG` to `PING`, `[control, "OK"]` to a request |
//!
//! Models 1 and 2 are REP servers in the Guide. Here all three use a ROUTER: for a REQ or
//! DEALER client it is the same on the wire, and it lets the server see the envelope, so a
//! request without its empty delimiter or without its control frame is logged (`E:`) and
//! dropped instead of being mis-parsed. The model-3 ROUTER carries the server's public endpoint
//! as its routing identity, which is how FLP clients address it.
//!
//! # Log lines (a stable contract)
//! * `I: <program> ready on <bound endpoint>` (model 3 adds ` as <identity>`)
//! * `E: malformed request from <peer>: <why>` for every dropped request
//! * `W: interrupted` on SIGINT/SIGTERM, just before a clean exit

use crate::protocol::{echo_reply, flp_reply, sequence_reply, ProtocolError};
use common::msg::frame_text;
use common::sock::{self, SockError};
use common::Message;
use std::future::Future;
use std::time::Duration;
use zeromq::{RouterSocket, Socket};

/// How long a reply may wait for room in a client's queue before it is dropped.
pub const SEND_TIMEOUT: Duration = Duration::from_millis(1000);

/// Which of the Guide's three servers to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// Model 1: echo.
    Echo,
    /// Model 2: `[sequence, "OK"]`.
    Sequence,
    /// Model 3: Freelance Protocol.
    Flp,
}

impl Model {
    /// The Guide's program name, used in log lines.
    pub fn program(self) -> &'static str {
        match self {
            Self::Echo => "flserver1",
            Self::Sequence => "flserver2",
            Self::Flp => "flserver3",
        }
    }

    /// The answer to one message received on the ROUTER (routing id first), addressed back.
    pub fn answer(self, request: Message) -> Result<Message, ProtocolError> {
        match self {
            Self::Echo => echo_reply(request),
            Self::Sequence => sequence_reply(request),
            Self::Flp => flp_reply(request),
        }
    }
}

/// Where and how a server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The model to serve.
    pub model: Model,
    /// The endpoint to bind (`tcp://*:5555` accepted).
    pub bind: String,
    /// The ROUTER's routing identity (model 3: its public endpoint).
    pub identity: Option<String>,
}

/// Why a server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// ZeroMQ identities are 1 to 255 bytes.
    #[error("identity {0:?} must be 1 to 255 bytes")]
    Identity(String),
    /// The endpoint could not be bound.
    #[error("cannot bind {endpoint}: {source}")]
    Bind {
        /// The endpoint asked for.
        endpoint: String,
        /// What the socket said.
        source: SockError,
    },
    /// The socket stopped delivering messages.
    #[error("receive failed: {0}")]
    Recv(#[from] zeromq::ZmqError),
}

/// A bound server, ready to [`run`](Server::run).
pub struct Server {
    model: Model,
    socket: RouterSocket,
    endpoint: String,
}

impl Server {
    /// Creates the ROUTER, binds it, and logs the ready line.
    pub async fn bind(config: ServerConfig) -> Result<Self, ServerError> {
        if let Some(id) = &config.identity {
            if id.is_empty() || id.len() > 255 {
                return Err(ServerError::Identity(id.clone()));
            }
        }
        let options = sock::options(Duration::from_secs(1), config.identity.as_deref());
        let mut socket = RouterSocket::with_options(options);
        let endpoint = sock::bind(&mut socket, &config.bind)
            .await
            .map_err(|source| ServerError::Bind {
                endpoint: config.bind.clone(),
                source,
            })?;
        match &config.identity {
            Some(id) => tracing::info!("{} ready on {endpoint} as {id}", config.model.program()),
            None => tracing::info!("{} ready on {endpoint}", config.model.program()),
        }
        Ok(Self {
            model: config.model,
            socket,
            endpoint,
        })
    }

    /// The endpoint actually bound (port resolved).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Answers requests until `shutdown` resolves.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        tokio::pin!(shutdown);
        loop {
            let request = tokio::select! {
                received = zeromq::SocketRecv::recv(&mut self.socket) => Message::from(received?),
                () = &mut shutdown => {
                    tracing::warn!("interrupted");
                    return Ok(());
                }
            };
            tracing::debug!("request\n{}", request.dump());
            let peer = request.first().map(|p| frame_text(p)).unwrap_or_default();
            match self.model.answer(request) {
                Ok(reply) => {
                    tracing::debug!("reply\n{}", reply.dump());
                    if let Err(e) = sock::send(&mut self.socket, reply, SEND_TIMEOUT).await {
                        tracing::warn!("reply to {peer} lost: {e}");
                    }
                }
                Err(e) => tracing::error!("malformed request from {peer}: {e}"),
            }
        }
    }
}

/// The endpoint clients use for a server bound at `bind`, when none is given: the Guide's
/// `tcp://*:5555` (or `tcp://0.0.0.0:5555`) is reached as `tcp://localhost:5555`.
pub fn public_endpoint(bind: &str) -> String {
    for any in ["tcp://*:", "tcp://0.0.0.0:"] {
        if let Some(port) = bind.strip_prefix(any) {
            return format!("tcp://localhost:{port}");
        }
    }
    bind.to_owned()
}

/// Binds and serves until SIGINT/SIGTERM: what `flserver1..3` do.
pub async fn serve(config: ServerConfig) -> Result<(), ServerError> {
    // Armed before the ready line, so a Ctrl-C right after it is handled cleanly.
    let shutdown = common::shutdown::signal();
    Server::bind(config).await?.run(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeromq::{DealerSocket, SocketRecv, SocketSend, ZmqMessage};

    #[tokio::test]
    async fn each_model_answers_a_dealer_and_drops_malformed_requests() {
        for (model, good, expected) in [
            (Model::Echo, vec!["", "hello"], vec!["", "hello"]),
            (Model::Sequence, vec!["", "5", "name"], vec!["", "5", "OK"]),
            (Model::Flp, vec!["5", "name"], vec!["5", "OK"]),
        ] {
            let config = ServerConfig {
                model,
                bind: "tcp://127.0.0.1:0".into(),
                identity: None,
            };
            let server = Server::bind(config).await.unwrap();
            let endpoint = server.endpoint().to_owned();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(server.run(async {
                let _ = stopped.await;
            }));
            let mut client = DealerSocket::new();
            sock::connect(&mut client, &endpoint, Duration::from_secs(5))
                .await
                .unwrap();
            // A lone frame: no delimiter for models 1 and 2, no control frame for model 3.
            client
                .send(ZmqMessage::from("lonely".to_string()))
                .await
                .unwrap();
            let good = Message::from_frames(good.into_iter().map(String::from));
            client.send(good.try_into().unwrap()).await.unwrap();
            let reply = sock::recv(&mut client, Duration::from_secs(5))
                .await
                .unwrap()
                .expect("a reply to the good request");
            let expected = Message::from_frames(expected.into_iter().map(String::from));
            assert_eq!(reply, expected, "{model:?}");
            let _ = stop.send(());
            task.await.unwrap().unwrap();
            // Nothing else ever came back (the malformed request got no answer).
            assert!(
                tokio::time::timeout(Duration::from_millis(50), client.recv())
                    .await
                    .is_err()
            );
        }
    }

    #[test]
    fn public_endpoint_maps_wildcards_to_localhost() {
        assert_eq!(public_endpoint("tcp://*:5555"), "tcp://localhost:5555");
        assert_eq!(public_endpoint("tcp://0.0.0.0:6"), "tcp://localhost:6");
        assert_eq!(public_endpoint("tcp://10.0.0.1:7"), "tcp://10.0.0.1:7");
        assert_eq!(public_endpoint("ipc:///tmp/x"), "ipc:///tmp/x");
    }

    #[tokio::test]
    async fn an_oversized_identity_is_refused() {
        let config = ServerConfig {
            model: Model::Flp,
            bind: "tcp://127.0.0.1:0".into(),
            identity: Some("x".repeat(256)),
        };
        assert!(matches!(
            Server::bind(config).await,
            Err(ServerError::Identity(_))
        ));
    }
}
