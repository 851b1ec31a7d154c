//! Where every line of every scenario process arrives, time-stamped, in one order.
//!
//! Reader threads push lines here as they are read; the engine waits on the same lock for the
//! lines a step needs; pending measures are resolved as their line arrives (so the time is the
//! line's arrival, not when the engine next looked); with echo on, each line is printed the
//! moment it arrives, so the output interleaves the processes as they really ran.

use crate::results::{Event, EventKind, NetEvent};
use crate::style::{self, paint};
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One line of output.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    /// Index of the process in the scenario.
    pub(crate) proc: usize,
    /// Which run of that process (1 = first start).
    pub(crate) run: u32,
    /// When it arrived, since the start of the scenario (the timeline report draws it there).
    pub(crate) at: Duration,
    pub(crate) text: String,
}

/// A `measure` waiting for its line.
#[derive(Debug)]
pub(crate) struct PendingMeasure {
    pub(crate) label: String,
    pub(crate) proc: usize,
    /// The step's number (1-based), to keep the report's measures in step order.
    pub(crate) step: usize,
    pub(crate) needle: String,
    /// The action's time.
    pub(crate) from: Instant,
    /// Only lines at or after this index count ("printed after the action").
    pub(crate) from_index: usize,
    pub(crate) elapsed: Option<Duration>,
}

/// Everything under the hub's lock.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) lines: Vec<Line>,
    pub(crate) measures: Vec<PendingMeasure>,
    /// Open output pipes per process (all runs).
    pub(crate) open_pipes: Vec<usize>,
    /// What the tour itself said (steps, notes, exits), with the time since the start.
    pub(crate) events: Vec<Event>,
}

/// Echo settings: process names padded to one width, colour on or off.
#[derive(Debug)]
pub(crate) struct Echo {
    pub(crate) names: Vec<String>,
    pub(crate) color: bool,
}

/// The shared line log of one scenario run.
#[derive(Debug)]
pub(crate) struct Hub {
    state: Mutex<State>,
    changed: Condvar,
    start: Instant,
    echo: Option<Echo>,
}

impl Hub {
    pub(crate) fn new(processes: usize, start: Instant, echo: Option<Echo>) -> Hub {
        Hub {
            state: Mutex::new(State {
                open_pipes: vec![0; processes],
                ..State::default()
            }),
            changed: Condvar::new(),
            start,
            echo,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for a change (a line, a closed pipe) or `timeout`, whichever first.
    pub(crate) fn wait<'a>(
        &self,
        guard: MutexGuard<'a, State>,
        timeout: Duration,
    ) -> MutexGuard<'a, State> {
        self.changed
            .wait_timeout(guard, timeout)
            .unwrap_or_else(|e| e.into_inner())
            .0
    }

    fn stamp(&self, at: Instant) -> String {
        format!(
            "{:>8.3}",
            at.saturating_duration_since(self.start).as_secs_f64()
        )
    }

    /// Records a line, resolves measures waiting for it, echoes it.
    pub(crate) fn push(&self, proc: usize, run: u32, text: String) {
        let at = Instant::now();
        let mut state = self.lock();
        let index = state.lines.len();
        let mut resolved = Vec::new();
        for m in state.measures.iter_mut() {
            if m.elapsed.is_none()
                && m.proc == proc
                && index >= m.from_index
                && text.contains(&m.needle)
            {
                let d = at.saturating_duration_since(m.from);
                m.elapsed = Some(d);
                resolved.push(format!("{} after {}", m.label, style::human(d)));
            }
        }
        if let Some(echo) = &self.echo {
            let name = paint(&echo.names[proc], style::process_color(proc), echo.color);
            let bar = paint("|", style::process_color(proc), echo.color);
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{} {name} {bar} {text}", self.stamp(at));
            for r in resolved {
                let _ = writeln!(
                    out,
                    "{} {}",
                    self.stamp(at),
                    paint(&format!("** measured: {r}"), style::GREEN, echo.color)
                );
            }
        }
        let at = at.saturating_duration_since(self.start);
        state.lines.push(Line {
            proc,
            run,
            at,
            text,
        });
        drop(state);
        self.changed.notify_all();
    }

    /// Prints a tour message (a title, a note, a wait) in the timeline, if echo is on.
    pub(crate) fn say(&self, text: &str, code: &str) {
        self.say_kind(text, code, EventKind::Message, None);
    }

    /// [`say`](Self::say) for a network step, recorded with its typed data.
    pub(crate) fn say_event(&self, text: &str, code: &str, net: Option<NetEvent>) {
        self.say_kind(text, code, EventKind::Message, net);
    }

    /// Records a tour message with what it means for the timeline report, and prints it.
    pub(crate) fn say_kind(&self, text: &str, code: &str, kind: EventKind, net: Option<NetEvent>) {
        let now = Instant::now();
        let mut state = self.lock();
        state.events.push(Event {
            at: now.saturating_duration_since(self.start),
            text: text.to_owned(),
            kind,
            net,
        });
        if let Some(echo) = &self.echo {
            let _ = writeln!(
                std::io::stdout().lock(),
                "{} {}",
                self.stamp(now),
                paint(text, code, echo.color)
            );
        }
    }

    /// Records an event for the timeline report without printing anything.
    pub(crate) fn record(&self, text: String, kind: EventKind) {
        let at = self.since_start(Instant::now());
        self.lock().events.push(Event {
            at,
            text,
            kind,
            net: None,
        });
    }

    /// Time since the start of the scenario.
    pub(crate) fn since_start(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.start)
    }

    /// Prints a message about one process with its coloured prefix, if echo is on.
    pub(crate) fn say_about(&self, proc: usize, name: &str, text: &str, kind: EventKind) {
        let now = Instant::now();
        let mut state = self.lock();
        state.events.push(Event {
            at: now.saturating_duration_since(self.start),
            text: format!("{name} {text}"),
            kind,
            net: None,
        });
        if let Some(echo) = &self.echo {
            let name = paint(&echo.names[proc], style::process_color(proc), echo.color);
            let _ = writeln!(
                std::io::stdout().lock(),
                "{} {name} {} {}",
                self.stamp(now),
                paint("|", style::process_color(proc), echo.color),
                paint(text, style::DIM, echo.color)
            );
        }
    }

    /// Reads `stream` line by line into the hub on a thread of its own until it closes.
    pub(crate) fn pump(self: &Arc<Hub>, proc: usize, run: u32, stream: impl Read + Send + 'static) {
        self.lock().open_pipes[proc] += 1;
        let hub = Arc::clone(self);
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                            buf.pop();
                        }
                        hub.push(proc, run, String::from_utf8_lossy(&buf).into_owned());
                    }
                }
            }
            hub.lock().open_pipes[proc] -= 1;
            hub.changed.notify_all();
        });
    }
}
