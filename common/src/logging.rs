//! Log lines in the Guide's style: `I: worker ready`, `W: …`, `E: …`, `D: …` (debug, `-v`).
//!
//! Lines go to standard error, one event per line, unbuffered, so a test or the tour that reads
//! them sees each one as soon as it is written. Tests wait for some of these lines: each binary
//! documents the ones it guarantees.

use std::fmt;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats an event as `X: message` with the Guide's one-letter level prefix.
struct GuideFormat;

impl<S, N> FormatEvent<S, N> for GuideFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let prefix = match *event.metadata().level() {
            Level::ERROR => "E",
            Level::WARN => "W",
            Level::INFO => "I",
            Level::DEBUG | Level::TRACE => "D",
        };
        write!(writer, "{prefix}: ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Installs the logger. `verbose` enables `D:` lines (frame dumps). Safe to call twice.
pub fn init(verbose: bool) {
    let level = if verbose { Level::DEBUG } else { Level::INFO };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .event_format(GuideFormat)
        .try_init();
}
