//! Model 1's plan, with no sockets and no clock: which server each attempt of a request goes
//! to, and whether an echo is the right one.
//!
//! With one server the client behaves like Lazy Pirate (try it `tries` times); with several it
//! tries each once, in the order given. Every request starts again from the first server, as in
//! the Guide: that is model 1's known weakness (a dead first server costs a timeout on every
//! request), which models 2 and 3 remove.

use common::Message;
use std::time::Duration;

/// Guide (flclient1): how long one attempt waits for its reply.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(1000);
/// Guide (flclient1): attempts on a single server before giving up.
pub const MAX_RETRIES: u32 = 3;

/// The endpoints one request tries, in order.
pub fn attempts(endpoints: &[String], tries_single: u32) -> Vec<&str> {
    match endpoints {
        [only] => vec![only.as_str(); tries_single.max(1) as usize],
        many => many.iter().map(String::as_str).collect(),
    }
}

/// True if `reply` is the echo of `request` (a REQ socket only ever gets its own reply, but a
/// misbehaving server could still answer something else).
pub fn is_echo(request: &Message, reply: &Message) -> bool {
    request == reply
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn one_server_is_tried_three_times_by_default() {
        let one = eps(&["tcp://a:1"]);
        assert_eq!(attempts(&one, MAX_RETRIES), ["tcp://a:1"; 3]);
        assert_eq!(attempts(&one, 0), ["tcp://a:1"], "always at least one try");
    }

    #[test]
    fn several_servers_are_each_tried_once_in_order() {
        let three = eps(&["tcp://a:1", "tcp://b:2", "tcp://c:3"]);
        assert_eq!(
            attempts(&three, MAX_RETRIES),
            ["tcp://a:1", "tcp://b:2", "tcp://c:3"]
        );
        assert!(attempts(&[], MAX_RETRIES).is_empty());
    }

    #[test]
    fn echo_must_match_exactly() {
        let req = Message::new().with("hello 1");
        assert!(is_echo(&req, &Message::new().with("hello 1")));
        assert!(!is_echo(&req, &Message::new().with("hello 2")));
    }
}
