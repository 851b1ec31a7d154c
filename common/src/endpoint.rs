//! Endpoint strings as the Guide writes them, made acceptable to the `zeromq` crate.
//!
//! The Guide binds `tcp://*:5555`; the `zeromq` crate only binds concrete addresses, so `*`
//! becomes `0.0.0.0`. Connecting to `*` makes no sense, so for a connect it becomes `127.0.0.1`
//! (handy when a user pastes a bind address into a client flag).

/// The endpoint to pass to `bind()`: `tcp://*:N` → `tcp://0.0.0.0:N`; anything else unchanged.
pub fn bindable(endpoint: &str) -> String {
    match endpoint.strip_prefix("tcp://*:") {
        Some(port) => format!("tcp://0.0.0.0:{port}"),
        None => endpoint.to_owned(),
    }
}

/// The endpoint to pass to `connect()`: `tcp://*:N` → `tcp://127.0.0.1:N`; anything else unchanged.
pub fn connectable(endpoint: &str) -> String {
    match endpoint.strip_prefix("tcp://*:") {
        Some(port) => format!("tcp://127.0.0.1:{port}"),
        None => endpoint.to_owned(),
    }
}

/// Checks the shape `tcp://host:port` or `ipc://path`, so a typo fails at start-up with a clear
/// message instead of deep inside the socket library.
pub fn validate(endpoint: &str) -> Result<(), String> {
    if let Some(rest) = endpoint.strip_prefix("tcp://") {
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| format!("{endpoint}: expected tcp://HOST:PORT"))?;
        if host.is_empty() {
            return Err(format!(
                "{endpoint}: missing host (use * to bind all interfaces)"
            ));
        }
        port.parse::<u16>()
            .map_err(|_| format!("{endpoint}: port {port:?} is not a number from 0 to 65535"))?;
        Ok(())
    } else if let Some(path) = endpoint.strip_prefix("ipc://") {
        if path.is_empty() {
            Err(format!("{endpoint}: missing path"))
        } else {
            Ok(())
        }
    } else {
        Err(format!(
            "{endpoint}: expected tcp://HOST:PORT or ipc://PATH"
        ))
    }
}

/// A clap value parser that accepts only endpoints [`validate`] accepts.
pub fn parse(endpoint: &str) -> Result<String, String> {
    validate(endpoint).map(|()| endpoint.to_owned())
}

/// A TCP port the OS just handed out on 127.0.0.1 (bound, then released for the test to use).
///
/// The OS may hand a released port out again, and tests run in parallel threads: a port this
/// process already returned is never returned twice, so two tests never share one.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    // Hold every candidate until a new one is found, so the OS cannot offer it again meanwhile.
    let mut held = Vec::new();
    loop {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("no free TCP port on 127.0.0.1");
        let port = listener.local_addr().expect("bound address").port();
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
        held.push(listener);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_binds_all_interfaces_and_connects_to_loopback() {
        assert_eq!(bindable("tcp://*:5555"), "tcp://0.0.0.0:5555");
        assert_eq!(connectable("tcp://*:5555"), "tcp://127.0.0.1:5555");
        assert_eq!(bindable("tcp://127.0.0.1:0"), "tcp://127.0.0.1:0");
        assert_eq!(connectable("ipc:///tmp/x"), "ipc:///tmp/x");
    }

    #[test]
    fn validate_rejects_typos() {
        assert!(validate("tcp://*:5555").is_ok());
        assert!(validate("tcp://localhost:5555").is_ok());
        assert!(validate("ipc:///tmp/q.ipc").is_ok());
        assert!(validate("tcp://localhost").is_err());
        assert!(validate("tcp://:5555").is_err());
        assert!(validate("tcp://*:99999").is_err());
        assert!(validate("udp://x:1").is_err());
        assert!(validate("ipc://").is_err());
    }
}
