//! The pure core of the proxy: one direction of one connection, as a queue of what was read and
//! not yet written, and the rule that says what may leave it at `now`.
//!
//! No sockets, no clock: the shell pushes what it reads ([`Pipe::push`], [`Pipe::push_end`]) and
//! asks [`Pipe::poll`] what to do next: write a chunk, pass the sender's FIN or RST on, or wait
//! (until an instant, or until more input or another fault). That makes every fault testable with
//! virtual time below.
//!
//! Invariants: bytes leave in the order they arrived, each exactly once (a throttled chunk may
//! leave in pieces); nothing is ever dropped; the end of the stream leaves after the last byte.

use super::command::{Direction, Fault};
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Bytes one direction holds before the proxy stops reading from the sender. Past it the kernel's
/// buffers fill and the sender's writes block, as on a real network whose link is down: memory
/// stays bounded however long a partition lasts. (Two directions: 4 MiB per connection.)
pub const MAX_HELD: usize = 2 * 1024 * 1024;

/// The largest burst a throttled direction sends at once: a tenth of a second's worth of its
/// rate, so the rate is smooth at a 100 ms scale, and at most 64 KiB.
fn burst(rate: u64) -> u64 {
    (rate / 10).clamp(1, 64 * 1024)
}

/// Linux's smallest retransmission timeout: the first retransmission of data on a fast link.
pub const MIN_RTO: Duration = Duration::from_millis(200);
/// Linux's initial retransmission timeout of a SYN: a connect's first retry.
pub const SYN_RTO: Duration = Duration::from_secs(1);
/// Linux's largest retransmission timeout: the back-off stops doubling here.
pub const MAX_RTO: Duration = Duration::from_secs(120);

/// When a TCP sender whose first unacknowledged segment left at `first_sent` (with timeout
/// `first_rto`) retransmits next, at `now` or later: at `first_sent + rto`, then after every doubled
/// timeout (capped at [`MAX_RTO`]). After a partition the peer hears from it only then: data sent
/// into a 10 s partition arrives up to 6.4 s after the link heals.
pub fn next_retransmission(first_sent: Instant, first_rto: Duration, now: Instant) -> Instant {
    let mut rto = first_rto;
    let mut at = first_sent + rto;
    while at < now {
        rto = (rto * 2).min(MAX_RTO);
        at += rto;
    }
    at
}

/// What a fault means for one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Everything queued may leave now.
    Free,
    /// Nothing leaves.
    Held,
    /// A chunk leaves this long after it arrived.
    Delayed(Duration),
    /// At most this many bytes per second leave.
    Throttled(u64),
}

impl Flow {
    /// What `fault` does to the bytes going in `direction`.
    pub fn of(fault: Fault, direction: Direction) -> Flow {
        match fault {
            Fault::Pass => Flow::Free,
            Fault::Partition => Flow::Held,
            Fault::OneWay(held) if held == direction => Flow::Held,
            Fault::OneWay(_) => Flow::Free,
            Fault::Delay(delay) => Flow::Delayed(delay),
            // Zero would never send again: that is a partition (the parser refuses it anyway).
            Fault::Throttle(0) => Flow::Held,
            Fault::Throttle(rate) => Flow::Throttled(rate),
        }
    }
}

/// How the sender ended its side of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// It closed cleanly (FIN, a read of 0 bytes): pass a FIN on.
    Fin,
    /// It aborted (a read error, usually ECONNRESET): abort the connection.
    Reset,
}

/// What the shell does next for this direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write these bytes to the receiver (all of them), then poll again.
    Write(Bytes),
    /// The stream ends here: pass this end on; the direction is finished.
    Finish(End),
    /// Nothing may leave now. Poll again at this instant, when input arrives, or when the fault
    /// changes; `None`: only on input or a fault change.
    Wait(Option<Instant>),
}

/// Something read from the sender, stamped with its arrival.
#[derive(Debug)]
enum Item {
    Data(Bytes),
    End(End),
}

/// A token bucket for [`Flow::Throttled`].
#[derive(Debug, Clone, Copy)]
struct Bucket {
    rate: u64,
    /// Bytes that may leave now (fractional: refills are continuous).
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    /// A full bucket: the first burst leaves at once when a throttle starts.
    fn new(rate: u64, now: Instant) -> Bucket {
        Bucket {
            rate,
            tokens: burst(rate) as f64,
            refilled: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate as f64).min(burst(self.rate) as f64);
        self.refilled = now;
    }
}

/// One direction of one connection: what was read and not yet written.
#[derive(Debug, Default)]
pub struct Pipe {
    queue: VecDeque<(Instant, Item)>,
    /// Data bytes in `queue`.
    held: usize,
    /// The sender's end has been read: read no more.
    ended: bool,
    /// The bucket of the current throttle; `None` when not throttled (a new throttle starts full).
    bucket: Option<Bucket>,
    /// Model TCP's retransmission back-off on heal (see [`Pipe::with_tcp_backoff`]).
    tcp_backoff: bool,
    /// With `tcp_backoff`: when bytes first waited in a hold, as the sender's retransmission
    /// timer would have started then.
    stalled_since: Option<Instant>,
    /// With `tcp_backoff`: the retransmission, after the hold ended, that delivers what waited.
    resume_at: Option<Instant>,
}

impl Pipe {
    /// An empty pipe.
    pub fn new() -> Pipe {
        Pipe::default()
    }

    /// An empty pipe that, when a hold ends, releases what waited only at the sender's next TCP
    /// retransmission ([`next_retransmission`] from the moment bytes first waited, with
    /// [`MIN_RTO`]), as a real network does, instead of at once. A new hold before then starts
    /// over from the same first moment, as the back-off does.
    pub fn with_tcp_backoff() -> Pipe {
        Pipe {
            tcp_backoff: true,
            ..Pipe::default()
        }
    }

    /// Whether the shell should read more from the sender: not after its end, and not while the
    /// pipe holds [`MAX_HELD`] bytes or more (backpressure, never loss).
    pub fn wants_input(&self) -> bool {
        !self.ended && self.held < MAX_HELD
    }

    /// Bytes read and not yet handed out.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Queues bytes read from the sender at `now`.
    pub fn push(&mut self, bytes: Bytes, now: Instant) {
        if bytes.is_empty() {
            return;
        }
        self.held += bytes.len();
        self.queue.push_back((now, Item::Data(bytes)));
    }

    /// Queues the end of the sender's stream; it leaves after every byte before it.
    pub fn push_end(&mut self, end: End, now: Instant) {
        if !self.ended {
            self.ended = true;
            self.queue.push_back((now, Item::End(end)));
        }
    }

    /// What to do at `now` under `flow`. Call until it returns [`Step::Wait`].
    pub fn poll(&mut self, flow: Flow, now: Instant) -> Step {
        if !matches!(flow, Flow::Throttled(_)) {
            self.bucket = None;
        }
        let Some((arrived, item)) = self.queue.front_mut() else {
            self.stalled_since = None;
            self.resume_at = None;
            return Step::Wait(None);
        };
        if flow == Flow::Held {
            if self.tcp_backoff {
                self.stalled_since.get_or_insert(now);
                self.resume_at = None;
            }
            return Step::Wait(None);
        }
        if let Some(since) = self.stalled_since {
            let resume = *self
                .resume_at
                .get_or_insert_with(|| next_retransmission(since, MIN_RTO, now));
            if now < resume {
                return Step::Wait(Some(resume));
            }
            self.stalled_since = None;
            self.resume_at = None;
        }
        match flow {
            Flow::Free | Flow::Held => {} // (Held returned above)
            Flow::Delayed(delay) => {
                // One delay for the whole queue and arrivals in order: release times are in order
                // too, so checking the front is enough.
                let due = crate::contract::saturating_add(*arrived, delay);
                if now < due {
                    return Step::Wait(Some(due));
                }
            }
            Flow::Throttled(rate) => {
                if let Item::Data(bytes) = item {
                    let bucket = match &mut self.bucket {
                        Some(bucket) if bucket.rate == rate => bucket,
                        other => other.insert(Bucket::new(rate, now)),
                    };
                    bucket.refill(now);
                    // Wait for a whole burst (or the whole chunk if smaller) rather than
                    // trickling out single bytes.
                    let want = (bytes.len() as u64).min(burst(rate)) as f64;
                    if bucket.tokens < want {
                        let wait = Duration::from_secs_f64((want - bucket.tokens) / rate as f64);
                        let wait = wait.max(Duration::from_millis(1));
                        return Step::Wait(Some(crate::contract::saturating_add(now, wait)));
                    }
                    let n = (bucket.tokens.floor() as usize).min(bytes.len());
                    bucket.tokens -= n as f64;
                    if n < bytes.len() {
                        self.held -= n;
                        return Step::Write(bytes.split_to(n));
                    }
                }
            }
        }
        let (_, item) = self.queue.pop_front().expect("front exists");
        match item {
            Item::Data(bytes) => {
                self.held -= bytes.len();
                Step::Write(bytes)
            }
            Item::End(end) => Step::Finish(end),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Polls until the pipe waits; returns the bytes written and the end, if any.
    fn drain(pipe: &mut Pipe, flow: Flow, now: Instant) -> (Vec<u8>, Option<End>, Step) {
        let mut out = Vec::new();
        loop {
            match pipe.poll(flow, now) {
                Step::Write(bytes) => out.extend_from_slice(&bytes),
                Step::Finish(end) => return (out, Some(end), Step::Finish(end)),
                wait @ Step::Wait(_) => return (out, None, wait),
            }
        }
    }

    #[test]
    fn retransmissions_back_off_from_the_first_send() {
        let t0 = Instant::now();
        // 200 ms, then 400, 800, 1 600, 3 200, 6 400 ms later: t0 + 0.2, 0.6, 1.4, 3.0, 6.2, 12.6 s.
        assert_eq!(next_retransmission(t0, MIN_RTO, t0), t0 + ms(200));
        assert_eq!(next_retransmission(t0, MIN_RTO, t0 + ms(200)), t0 + ms(200));
        assert_eq!(
            next_retransmission(t0, MIN_RTO, t0 + ms(3_000)),
            t0 + ms(3_000)
        );
        assert_eq!(
            next_retransmission(t0, MIN_RTO, t0 + ms(3_001)),
            t0 + ms(6_200)
        );
        assert_eq!(
            next_retransmission(t0, MIN_RTO, t0 + ms(10_000)),
            t0 + ms(12_600)
        );
        // A connect: SYN retries 1, 3, 7, 15 s after the first SYN.
        assert_eq!(
            next_retransmission(t0, SYN_RTO, t0 + ms(9_000)),
            t0 + ms(15_000)
        );
        // The timeout stops doubling at 120 s.
        let far = next_retransmission(t0, MIN_RTO, t0 + Duration::from_secs(3_600));
        let before = next_retransmission(t0, MIN_RTO, far - ms(1));
        assert!(far - before <= MAX_RTO);
    }

    #[test]
    fn with_tcp_backoff_a_heal_delivers_at_the_next_retransmission() {
        let t0 = Instant::now();
        let mut pipe = Pipe::with_tcp_backoff();
        pipe.push(Bytes::from_static(b"first"), t0);
        assert_eq!(pipe.poll(Flow::Held, t0), Step::Wait(None));
        pipe.push(Bytes::from_static(b" second"), t0 + ms(5_000));
        assert_eq!(pipe.poll(Flow::Held, t0 + ms(5_000)), Step::Wait(None));
        // Healed at 10 s: the sender's retransmissions came at 0.2, 0.6, 1.4, 3.0, 6.2 s (all
        // lost) and the next at 12.6 s delivers everything.
        let heal = t0 + ms(10_000);
        assert_eq!(
            pipe.poll(Flow::Free, heal),
            Step::Wait(Some(t0 + ms(12_600)))
        );
        assert_eq!(
            pipe.poll(Flow::Free, t0 + ms(12_000)),
            Step::Wait(Some(t0 + ms(12_600)))
        );
        assert_eq!(
            drain(&mut pipe, Flow::Free, t0 + ms(12_600)).0,
            b"first second"
        );
        // Afterwards bytes flow at once again.
        pipe.push(Bytes::from_static(b"after"), t0 + ms(13_000));
        assert_eq!(drain(&mut pipe, Flow::Free, t0 + ms(13_000)).0, b"after");
    }

    #[test]
    fn with_tcp_backoff_bytes_that_never_waited_are_not_delayed() {
        let t0 = Instant::now();
        let mut pipe = Pipe::with_tcp_backoff();
        assert_eq!(pipe.poll(Flow::Held, t0), Step::Wait(None));
        pipe.push(Bytes::from_static(b"new"), t0 + ms(100));
        assert_eq!(drain(&mut pipe, Flow::Free, t0 + ms(100)).0, b"new");
    }

    #[test]
    fn faults_map_to_flows_per_direction() {
        use Direction::*;
        assert_eq!(Flow::of(Fault::Pass, Upstream), Flow::Free);
        assert_eq!(Flow::of(Fault::Partition, Downstream), Flow::Held);
        assert_eq!(Flow::of(Fault::OneWay(Upstream), Upstream), Flow::Held);
        assert_eq!(Flow::of(Fault::OneWay(Upstream), Downstream), Flow::Free);
        assert_eq!(
            Flow::of(Fault::Delay(ms(5)), Upstream),
            Flow::Delayed(ms(5))
        );
        assert_eq!(Flow::of(Fault::Throttle(9), Downstream), Flow::Throttled(9));
        assert_eq!(Flow::of(Fault::Throttle(0), Downstream), Flow::Held);
    }

    #[test]
    fn free_flow_passes_everything_in_order_then_the_end() {
        let t0 = Instant::now();
        let mut pipe = Pipe::new();
        pipe.push(Bytes::from_static(b"abc"), t0);
        pipe.push(Bytes::new(), t0);
        pipe.push(Bytes::from_static(b"def"), t0);
        pipe.push_end(End::Fin, t0);
        assert!(!pipe.wants_input(), "nothing is read after the end");
        let (out, end, _) = drain(&mut pipe, Flow::Free, t0);
        assert_eq!(out, b"abcdef");
        assert_eq!(end, Some(End::Fin));
        assert_eq!(pipe.held(), 0);
        assert_eq!(pipe.poll(Flow::Free, t0), Step::Wait(None));
    }

    #[test]
    fn held_flow_keeps_everything_and_the_end_until_healed() {
        let t0 = Instant::now();
        let mut pipe = Pipe::new();
        pipe.push(Bytes::from_static(b"during"), t0);
        pipe.push_end(End::Reset, t0);
        for later in [0, 1_000, 3_600_000] {
            assert_eq!(pipe.poll(Flow::Held, t0 + ms(later)), Step::Wait(None));
        }
        assert_eq!(pipe.held(), 6);
        let (out, end, _) = drain(&mut pipe, Flow::Free, t0 + ms(3_600_001));
        assert_eq!(out, b"during");
        assert_eq!(
            end,
            Some(End::Reset),
            "the sender's RST passes only after healing"
        );
    }

    #[test]
    fn a_full_pipe_stops_reading_and_reads_again_once_drained() {
        let t0 = Instant::now();
        let mut pipe = Pipe::new();
        let chunk = Bytes::from(vec![7u8; 64 * 1024]);
        let mut pushed = 0;
        while pipe.wants_input() {
            pipe.push(chunk.clone(), t0);
            pushed += chunk.len();
        }
        assert_eq!(pushed, MAX_HELD);
        assert_eq!(pipe.poll(Flow::Held, t0), Step::Wait(None));
        let (out, _, _) = drain(&mut pipe, Flow::Free, t0);
        assert_eq!(out.len(), pushed, "nothing held was lost");
        assert!(pipe.wants_input());
    }

    #[test]
    fn delay_releases_each_chunk_its_delay_after_arrival_in_order() {
        let t0 = Instant::now();
        let flow = Flow::Delayed(ms(200));
        let mut pipe = Pipe::new();
        pipe.push(Bytes::from_static(b"a"), t0);
        pipe.push(Bytes::from_static(b"b"), t0 + ms(50));
        pipe.push_end(End::Fin, t0 + ms(60));
        assert_eq!(
            pipe.poll(flow, t0 + ms(100)),
            Step::Wait(Some(t0 + ms(200)))
        );
        assert_eq!(drain(&mut pipe, flow, t0 + ms(200)).0, b"a");
        assert_eq!(
            pipe.poll(flow, t0 + ms(200)),
            Step::Wait(Some(t0 + ms(250)))
        );
        let (out, end, step) = drain(&mut pipe, flow, t0 + ms(255));
        assert_eq!(out, b"b");
        assert_eq!(end, None, "the FIN is delayed like the bytes");
        assert_eq!(step, Step::Wait(Some(t0 + ms(260))));
        assert_eq!(drain(&mut pipe, flow, t0 + ms(260)).1, Some(End::Fin));
    }

    #[test]
    fn healing_a_delay_releases_what_waits_at_once() {
        let t0 = Instant::now();
        let mut pipe = Pipe::new();
        pipe.push(Bytes::from_static(b"late"), t0);
        assert!(matches!(
            pipe.poll(Flow::Delayed(ms(1_000)), t0),
            Step::Wait(Some(_))
        ));
        assert_eq!(drain(&mut pipe, Flow::Free, t0 + ms(1)).0, b"late");
    }

    #[test]
    fn throttle_sends_a_burst_then_keeps_to_the_rate() {
        let t0 = Instant::now();
        let rate = 10_000; // bytes/s: bursts of 1 000 bytes
        let flow = Flow::Throttled(rate);
        let mut pipe = Pipe::new();
        pipe.push(Bytes::from(vec![1u8; 5_000]), t0);
        pipe.push(Bytes::from(vec![2u8; 5_000]), t0);

        // Step virtual time to each instant the pipe asks for; count bytes per instant.
        let mut now = t0;
        let mut sent = 0;
        let mut out = Vec::new();
        while sent < 10_000 {
            let (bytes, _, step) = drain(&mut pipe, flow, now);
            sent += bytes.len();
            out.extend(bytes);
            match step {
                Step::Wait(Some(at)) => now = at,
                Step::Wait(None) => break,
                Step::Write(_) | Step::Finish(_) => unreachable!(),
            }
        }
        assert_eq!(out.len(), 10_000);
        assert!(out[..5_000].iter().all(|&b| b == 1) && out[5_000..].iter().all(|&b| b == 2));
        // The first 1 000 bytes leave at once; the other 9 000 take 0.9 s at 10 000 bytes/s.
        let took = now - t0;
        assert!(
            took >= ms(890) && took <= ms(920),
            "10 000 bytes at {rate} B/s took {took:?}"
        );
    }

    #[test]
    fn a_new_throttle_rate_starts_a_full_bucket() {
        let t0 = Instant::now();
        let mut pipe = Pipe::new();
        pipe.push(Bytes::from(vec![0u8; 2_000]), t0);
        // 1 000 B/s: bursts of 100 bytes.
        assert_eq!(drain(&mut pipe, Flow::Throttled(1_000), t0).0.len(), 100);
        // 100 000 B/s: bursts of 10 000 bytes, so the rest leaves at once.
        assert_eq!(
            drain(&mut pipe, Flow::Throttled(100_000), t0).0.len(),
            1_900
        );
    }
}
