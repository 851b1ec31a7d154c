//! ANSI colours for the terminal output, switched off for pipes and `--no-color`.

/// Colours given to processes in the order the scenario lists them.
const PALETTE: [&str; 6] = ["36", "33", "35", "32", "34", "91"];

/// `text` wrapped in the SGR `code` when `color` is on.
pub fn paint(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}

/// The colour of the `index`th process.
pub(crate) fn process_color(index: usize) -> &'static str {
    PALETTE[index % PALETTE.len()]
}

/// Headings.
pub const BOLD: &str = "1";
/// Tour remarks (endpoints, exits, waits).
pub const DIM: &str = "2";
/// Failures.
pub const RED: &str = "1;31";
/// Passes and measured times.
pub const GREEN: &str = "1;32";
/// Timeline steps and notes.
pub const STEP: &str = "1;33";

/// Whether colour should be used on standard output: a terminal, no `NO_COLOR`.
pub fn stdout_wants_color() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// A duration as people read it: `850 ms`, `3.1 s`.
pub fn human(d: std::time::Duration) -> String {
    if d < std::time::Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human(Duration::from_millis(850)), "850 ms");
        assert_eq!(human(Duration::from_millis(3140)), "3.1 s");
    }

    #[test]
    fn paint_is_plain_without_color() {
        assert_eq!(paint("x", RED, false), "x");
        assert_eq!(paint("x", RED, true), "\x1b[1;31mx\x1b[0m");
    }
}
