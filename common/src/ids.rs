//! Identifiers whose secrecy or uniqueness matters, drawn from the operating system's random
//! source.
//!
//! Two kinds of identifier here are worth stealing:
//! * a Majordomo **request id** unlocks a remembered reply: the broker's dedup store answers any
//!   sender of a known id (retries come from fresh sockets, so it cannot check who asks);
//! * a **socket identity** owns a route: when a second peer connects to a `zeromq` ROUTER under
//!   an identity already in use, the route silently moves to the newcomer (every later send to
//!   that identity goes to it) and the first peer's connection is closed, with no `Disconnected`
//!   event on the ROUTER's monitor (measured with zeromq 0.7 on this machine).
//!
//! So both carry [`RANDOM_BITS`] bits from the OS (`getrandom`, through `uuid`'s v4): one known
//! value tells nothing about the next, and two processes started in the same nanosecond still
//! differ. They never come from the clock, the pid or the seeded [`crate::rng`], whose one job is
//! reproducible fault schedules.

use uuid::Uuid;

/// Random bits in every [`token`] and [`identity`] (a v4 UUID: 128 bits, 6 of them fixed).
pub const RANDOM_BITS: u32 = 122;

/// Length of a [`token`], and of the random part of an [`identity`], in bytes.
pub const TOKEN_LEN: usize = 32;

/// A fresh unguessable token: [`TOKEN_LEN`] lowercase hex digits holding [`RANDOM_BITS`] bits
/// from the OS. Panics only if the OS has no random source at all (as `uuid` does).
pub fn token() -> String {
    format!("{:032x}", Uuid::new_v4().as_u128())
}

/// A fresh unguessable socket identity: `prefix` (kept for the log lines that name the peer,
/// like Majordomo's `W`), then [`TOKEN_LEN`] uppercase hex digits (the Guide's identities are
/// uppercase hex). Printable, and well under the 255 bytes ZMTP allows for any short prefix.
pub fn identity(prefix: &str) -> String {
    format!("{prefix}{:032X}", Uuid::new_v4().as_u128())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Hex digits, all of one case.
    fn is_hex(s: &str, upper: bool) -> bool {
        let wrong_case = |b: &u8| {
            if upper {
                b.is_ascii_lowercase()
            } else {
                b.is_ascii_uppercase()
            }
        };
        s.bytes().all(|b| b.is_ascii_hexdigit()) && !s.bytes().any(|b| wrong_case(&b))
    }

    #[test]
    fn tokens_and_identities_have_their_form() {
        let token = token();
        assert_eq!(token.len(), TOKEN_LEN);
        assert!(is_hex(&token, false), "{token}");
        let id = identity("W");
        assert_eq!(id.len(), 1 + TOKEN_LEN);
        assert!(id.starts_with('W') && is_hex(&id[1..], true), "{id}");
        assert!(identity("").bytes().all(|b| b.is_ascii_graphic()));
    }

    #[test]
    fn every_draw_is_fresh() {
        let tokens: HashSet<String> = (0..10_000).map(|_| token()).collect();
        assert_eq!(tokens.len(), 10_000);
        let ids: HashSet<String> = (0..10_000).map(|_| identity("W")).collect();
        assert_eq!(ids.len(), 10_000);
    }
}
