//! 8/MMI answers, including this broker's operator extensions.
//!
//! The spec's one service, `mmi.service`, answers `200` or `404`; any `mmi.*` name the broker
//! does not implement answers `501`. The extensions keep that shape — first frame a status
//! code — and add rows, each a fixed number of frames (text numbers, so any client can read them):
//!
//! | service | reply after `"200"` |
//! |---|---|
//! | `mmi.services` | per service: name, idle workers, busy workers, waiting requests, served |
//! | `mmi.workers` | per worker: the start of its identity ([`shown_id`]), service, `idle`/`busy`, ms until it expires, requests out at it (of this broker and, in a pair, of the other), its credit ([`crate::credit`]), its connection's CURVE public key in Z85 (`-` without CURVE; what `--worker-keys` checks) |
//! | `mmi.broker` | name/value pairs: `workers`, `services`, `requests`, `replies`, `dropped_full`, `expired`, `lost_with_worker`, `requeued`, `dropped_client_gone`, `workers_gone`, `queued_bytes`, `purged`, `disconnects_sent`, `malformed`, `dedup_ids`, `dedup_joined`, `dedup_replayed`, `answered_elsewhere`, `fenced`, `dropped_passive` |
//! | `mmi.pair` | name/value pairs of text: `role` (`none` for a lone broker, then nothing else), or `role` (`primary`/`backup`), `state` (`ACTIVE`, `PASSIVE`, …), `epoch`, `peer` (its last state, `unknown` before it was heard), `peer_silent_ms` (`never` before it was heard) ([`crate::ha`]) |
//!
//! Rows are sorted (services by name, workers by service then identity).
//!
//! Any peer of the broker's port may ask, and a peer that connects under a worker's identity
//! takes that worker's route (the `zeromq` ROUTER gives it to the newest connection): so
//! `mmi.workers` shows only the start of each identity, enough to tell workers apart and to find
//! them in the broker's log, not enough to connect as one.

use crate::broker::{Broker, MMI_BROKER, MMI_PAIR, MMI_SERVICES, MMI_WORKERS};
use crate::protocol::{MMI_NOT_FOUND, MMI_NOT_IMPLEMENTED, MMI_OK, MMI_SERVICE};
use common::curve::keys::PublicKey;
use common::msg::frame_text;
use common::Message;
use std::time::Instant;

/// Why an MMI reply could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MmiError {
    /// The first frame was not `200` (e.g. `501` from a broker without the extension).
    #[error("status {0}")]
    Status(String),
    /// The rows did not have the expected number of frames or a field was not a number.
    #[error("malformed MMI reply: {0}")]
    Malformed(&'static str),
}

/// One service as `mmi.services` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRow {
    /// Service name.
    pub name: String,
    /// Workers waiting for a request.
    pub idle: u64,
    /// Workers handling a request.
    pub busy: u64,
    /// Requests waiting for a worker.
    pub waiting: u64,
    /// Replies delivered since the service entry was created.
    pub served: u64,
}

/// One worker as `mmi.workers` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRow {
    /// The start of the worker's routing identity (text, or hex if binary): [`shown_id`].
    pub id: String,
    /// The service it offers.
    pub service: String,
    /// Whether it is handling a request.
    pub busy: bool,
    /// Milliseconds until the broker purges it unless it is heard from.
    pub expires_in_ms: u64,
    /// Requests out at it (ours, and in a pair those it runs for the other broker).
    pub in_flight: u64,
    /// Most requests it may have out at once ([`crate::credit`]; 1 for a plain worker).
    pub credit: u64,
    /// Its connection's authenticated CURVE public key (Z85), if it came in over CURVE: who
    /// it is, for `--worker-keys`. Shown in full: a public key is no secret.
    pub key: Option<String>,
}

/// The `key` column of a worker that has no CURVE key (NULL security, or `ipc://`).
pub const NO_KEY: &str = "-";

/// Characters of a worker identity that `mmi.workers` shows: `W` and 8 hex digits of ours, 32
/// bits, leaving 90 of its random bits unknown.
pub const SHOWN_ID_CHARS: usize = 9;

/// A worker identity as `mmi.workers` shows it: its first [`SHOWN_ID_CHARS`] characters, then
/// `..` if it had more.
pub fn shown_id(id: &str) -> String {
    match id.char_indices().nth(SHOWN_ID_CHARS) {
        Some((cut, _)) => format!("{}..", &id[..cut]),
        None => id.to_owned(),
    }
}

fn number(frame: &[u8]) -> Result<u64, MmiError> {
    std::str::from_utf8(frame)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(MmiError::Malformed("not a number"))
}

fn string(frame: &[u8]) -> String {
    String::from_utf8_lossy(frame).into_owned()
}

/// Checks the status frame and splits the rest into rows of `width` frames.
fn rows(reply: &Message, width: usize) -> Result<Vec<Vec<&[u8]>>, MmiError> {
    let mut frames = reply.iter();
    match frames.next() {
        Some(code) if code == MMI_OK.as_bytes() => {}
        Some(code) => return Err(MmiError::Status(string(code))),
        None => return Err(MmiError::Malformed("empty reply")),
    }
    let fields: Vec<&[u8]> = frames.map(|f| &f[..]).collect();
    if !fields.len().is_multiple_of(width) {
        return Err(MmiError::Malformed("incomplete row"));
    }
    Ok(fields.chunks(width).map(<[&[u8]]>::to_vec).collect())
}

impl ServiceRow {
    /// Appends the row's frames.
    pub fn write(self, reply: &mut Message) {
        reply.push_back(self.name);
        for n in [self.idle, self.busy, self.waiting, self.served] {
            reply.push_back(n.to_string());
        }
    }

    /// Reads an `mmi.services` reply.
    pub fn parse_all(reply: &Message) -> Result<Vec<ServiceRow>, MmiError> {
        rows(reply, 5)?
            .into_iter()
            .map(|row| {
                Ok(ServiceRow {
                    name: string(row[0]),
                    idle: number(row[1])?,
                    busy: number(row[2])?,
                    waiting: number(row[3])?,
                    served: number(row[4])?,
                })
            })
            .collect()
    }
}

impl WorkerRow {
    /// Appends the row's frames.
    pub fn write(self, reply: &mut Message) {
        reply.push_back(self.id);
        reply.push_back(self.service);
        reply.push_back(if self.busy { "busy" } else { "idle" });
        reply.push_back(self.expires_in_ms.to_string());
        reply.push_back(self.in_flight.to_string());
        reply.push_back(self.credit.to_string());
        reply.push_back(self.key.unwrap_or_else(|| NO_KEY.to_owned()));
    }

    /// Reads an `mmi.workers` reply.
    pub fn parse_all(reply: &Message) -> Result<Vec<WorkerRow>, MmiError> {
        rows(reply, 7)?
            .into_iter()
            .map(|row| {
                Ok(WorkerRow {
                    id: string(row[0]),
                    service: string(row[1]),
                    busy: match row[2] {
                        b"busy" => true,
                        b"idle" => false,
                        _ => return Err(MmiError::Malformed("state is neither idle nor busy")),
                    },
                    expires_in_ms: number(row[3])?,
                    in_flight: number(row[4])?,
                    credit: number(row[5])?,
                    key: Some(string(row[6])).filter(|key| key != NO_KEY),
                })
            })
            .collect()
    }
}

/// Reads an `mmi.broker` reply into `(name, value)` pairs.
pub fn parse_broker(reply: &Message) -> Result<Vec<(String, u64)>, MmiError> {
    rows(reply, 2)?
        .into_iter()
        .map(|row| Ok((string(row[0]), number(row[1])?)))
        .collect()
}

/// Reads an `mmi.pair` reply into `(name, value)` pairs of text.
pub fn parse_pair(reply: &Message) -> Result<Vec<(String, String)>, MmiError> {
    Ok(rows(reply, 2)?
        .into_iter()
        .map(|row| (string(row[0]), string(row[1])))
        .collect())
}

/// One line about a broker's place in a pair, from its `mmi.pair` rows: `pair: primary ACTIVE
/// (epoch 3), peer PASSIVE heard 120 ms ago`; `None` for a lone broker.
pub fn pair_line(rows: &[(String, String)]) -> Option<String> {
    let get = |name: &str| {
        rows.iter()
            .find(|(n, _)| n == name)
            .map_or("?", |(_, v)| v.as_str())
    };
    if get("role") == "none" {
        return None;
    }
    let heard = match get("peer_silent_ms") {
        "never" => "never heard".to_owned(),
        ms => format!("heard {ms} ms ago"),
    };
    Some(format!(
        "pair: {} {} (epoch {}), peer {} {heard}",
        get("role"),
        get("state"),
        get("epoch"),
        get("peer")
    ))
}

/// Renders service rows as an aligned table, like `rabbitmqctl list_queues`.
pub fn services_table(rows: &[ServiceRow]) -> String {
    let width = rows
        .iter()
        .map(|r| r.name.len())
        .chain([7])
        .max()
        .unwrap_or(7);
    let mut out = format!(
        "{:<width$}  {:>6}  {:>6}  {:>8}  {:>10}\n",
        "service", "idle", "busy", "waiting", "served"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<width$}  {:>6}  {:>6}  {:>8}  {:>10}\n",
            r.name, r.idle, r.busy, r.waiting, r.served
        ));
    }
    out
}

/// Renders worker rows as an aligned table.
pub fn workers_table(rows: &[WorkerRow]) -> String {
    let id_width = rows
        .iter()
        .map(|r| r.id.len())
        .chain([6])
        .max()
        .unwrap_or(6);
    let svc_width = rows
        .iter()
        .map(|r| r.service.len())
        .chain([7])
        .max()
        .unwrap_or(7);
    let mut out = format!(
        "{:<id_width$}  {:<svc_width$}  {:<5}  {:>10}  {:>9}  {:>6}  key\n",
        "worker", "service", "state", "expires_ms", "in_flight", "credit"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<id_width$}  {:<svc_width$}  {:<5}  {:>10}  {:>9}  {:>6}  {}\n",
            r.id,
            r.service,
            if r.busy { "busy" } else { "idle" },
            r.expires_in_ms,
            r.in_flight,
            r.credit,
            r.key.as_deref().unwrap_or(NO_KEY),
        ));
    }
    out
}

/// The broker's answers: each `mmi.*` request is answered from its tables at once.
impl Broker {
    /// Answers an `mmi.*` request.
    pub(crate) fn mmi(&self, service: &[u8], body: &Message, now: Instant) -> Message {
        let code = |c: &'static str| Message::from_frames([c]);
        if service == MMI_SERVICE.as_bytes() {
            let available = body
                .first()
                .and_then(|name| self.services.get(name))
                .is_some_and(|s| s.workers > 0);
            return code(if available { MMI_OK } else { MMI_NOT_FOUND });
        }
        let mut reply = code(MMI_OK);
        if service == MMI_SERVICES.as_bytes() {
            let mut rows: Vec<ServiceRow> = self
                .services
                .iter()
                .map(|(name, s)| ServiceRow {
                    name: String::from_utf8_lossy(name).into_owned(),
                    idle: (s.workers - s.busy) as u64,
                    busy: s.busy as u64,
                    waiting: s.requests.len() as u64,
                    served: s.served,
                })
                .collect();
            rows.sort_by(|a, b| a.name.cmp(&b.name));
            rows.into_iter().for_each(|row| row.write(&mut reply));
        } else if service == MMI_WORKERS.as_bytes() {
            let mut rows: Vec<WorkerRow> = self
                .workers
                .iter()
                .map(|(id, w)| WorkerRow {
                    // Not all of it: whoever knows it can take the worker's route.
                    id: shown_id(&frame_text(id)),
                    service: String::from_utf8_lossy(&w.service).into_owned(),
                    busy: w.busy(),
                    in_flight: w.used() as u64,
                    credit: w.credit as u64,
                    key: self.peer_keys.get(id).map(PublicKey::to_z85),
                    expires_in_ms: w
                        .liveness
                        .deadline()
                        .saturating_duration_since(now)
                        .as_millis() as u64,
                })
                .collect();
            rows.sort_by(|a, b| (&a.service, &a.id).cmp(&(&b.service, &b.id)));
            rows.into_iter().for_each(|row| row.write(&mut reply));
        } else if service == MMI_BROKER.as_bytes() {
            let s = self.stats;
            let pairs = [
                ("workers", self.workers.len() as u64),
                ("services", self.services.len() as u64),
                ("requests", s.requests),
                ("replies", s.replies),
                ("dropped_full", s.dropped_full),
                ("expired", s.expired),
                ("lost_with_worker", s.lost_with_worker),
                ("requeued", s.requeued),
                ("dropped_client_gone", s.dropped_client_gone),
                ("workers_gone", s.workers_gone),
                (
                    "queued_bytes",
                    self.services
                        .values()
                        .map(|s| s.requests.bytes() as u64)
                        .sum(),
                ),
                ("purged", s.purged),
                ("disconnects_sent", s.disconnects_sent),
                ("malformed", s.malformed),
                ("dedup_ids", self.dedup.len() as u64),
                ("dedup_joined", self.dedup.stats().joined),
                ("dedup_replayed", self.dedup.stats().replayed),
                ("answered_elsewhere", s.answered_elsewhere),
                ("fenced", s.fenced),
                ("dropped_passive", s.dropped_passive),
            ];
            for (name, value) in pairs {
                reply.push_back(name);
                reply.push_back(value.to_string());
            }
        } else if service == MMI_PAIR.as_bytes() {
            for (name, value) in self.pair_rows(now) {
                reply.push_back(name);
                reply.push_back(value);
            }
        } else {
            return code(MMI_NOT_IMPLEMENTED);
        }
        reply
    }

    /// `mmi.pair`: `role none` for a lone broker; in a pair our role, state and epoch, the
    /// peer's last state and how long ago it was heard (`never` before it was).
    fn pair_rows(&self, now: Instant) -> Vec<(&'static str, String)> {
        let Some(standing) = self.standing else {
            return vec![("role", "none".to_owned())];
        };
        let (peer, silent) = match self.peer {
            Some((state, heard)) => (
                state.to_string(),
                now.saturating_duration_since(heard).as_millis().to_string(),
            ),
            None => ("unknown".to_owned(), "never".to_owned()),
        };
        vec![
            ("role", standing.role.to_string()),
            ("state", standing.state.to_string()),
            ("epoch", standing.epoch.to_string()),
            ("peer", peer),
            ("peer_silent_ms", silent),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_through_frames() {
        let services = vec![
            ServiceRow {
                name: "echo".into(),
                idle: 2,
                busy: 1,
                waiting: 0,
                served: 42,
            },
            ServiceRow {
                name: "titanic.request".into(),
                idle: 0,
                busy: 0,
                waiting: 3,
                served: 0,
            },
        ];
        let mut reply = Message::from_frames([MMI_OK]);
        services.iter().cloned().for_each(|r| r.write(&mut reply));
        assert_eq!(reply.len(), 11);
        assert_eq!(ServiceRow::parse_all(&reply).unwrap(), services);

        let worker = WorkerRow {
            id: "W1234-ABCD".into(),
            service: "echo".into(),
            busy: true,
            expires_in_ms: 7000,
            in_flight: 3,
            credit: 16,
            key: Some("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7".into()),
        };
        let mut reply = Message::from_frames([MMI_OK]);
        worker.clone().write(&mut reply);
        assert_eq!(WorkerRow::parse_all(&reply).unwrap(), vec![worker]);

        let table = services_table(&services);
        assert!(table.starts_with("service "));
        assert!(table.contains("echo"));
        assert_eq!(table.lines().count(), 3);
    }

    #[test]
    fn only_the_start_of_an_identity_is_shown() {
        let ours = format!("W{}", "0123456789ABCDEF".repeat(2));
        assert_eq!(shown_id(&ours), "W01234567..");
        assert_eq!(shown_id("W1"), "W1", "a short identity is shown whole");
        assert_eq!(shown_id("123456789"), "123456789");
        assert_eq!(shown_id("1234567890"), "123456789..");
    }

    #[test]
    fn bad_replies_are_typed_errors() {
        assert_eq!(
            ServiceRow::parse_all(&Message::from_frames(["501"])),
            Err(MmiError::Status("501".into()))
        );
        assert_eq!(
            ServiceRow::parse_all(&Message::from_frames(["200", "echo", "1"])),
            Err(MmiError::Malformed("incomplete row"))
        );
        assert!(parse_broker(&Message::from_frames(["200", "workers", "x"])).is_err());
        let lone = parse_pair(&Message::from_frames(["200", "role", "none"])).unwrap();
        assert_eq!(pair_line(&lone), None);
        let paired = parse_pair(&Message::from_frames([
            "200",
            "role",
            "backup",
            "state",
            "ACTIVE",
            "epoch",
            "2",
            "peer",
            "PASSIVE",
            "peer_silent_ms",
            "120",
        ]))
        .unwrap();
        assert_eq!(
            pair_line(&paired).unwrap(),
            "pair: backup ACTIVE (epoch 2), peer PASSIVE heard 120 ms ago"
        );
        assert_eq!(
            parse_broker(&Message::from_frames(["200", "workers", "3"])).unwrap(),
            vec![("workers".to_owned(), 3)]
        );
        assert!(ServiceRow::parse_all(&Message::new()).is_err());
    }
}
