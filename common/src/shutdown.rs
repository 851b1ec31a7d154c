//! Ctrl-C (SIGINT) and SIGTERM as one future, for `select!` in every program's loop.

use std::future::Future;

/// A future that resolves when the process receives SIGINT or SIGTERM.
///
/// The handlers are installed when this function is *called*, not when the future is first
/// polled, so a program that calls it before logging "ready" never misses an early Ctrl-C.
/// Must be called inside a tokio runtime.
pub fn signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let handlers = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        );
        async move {
            match handlers {
                (Ok(mut int), Ok(mut term)) => {
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The exit status of a program ended by Ctrl-C, as a shell reports it (128 + SIGINT).
pub const INTERRUPTED: u8 = 130;

/// Runs `work` until it finishes (`Some`) or Ctrl-C / SIGTERM arrives (`None`, after printing
/// `W: interrupted`). Dropping `work` must stop what it started: the benchmarks hold their
/// child processes in kill-on-drop guards, so an interrupted run leaves nothing behind.
pub async fn unless_interrupted<T>(work: impl Future<Output = T>) -> Option<T> {
    let interrupted = signal();
    tokio::select! {
        biased;
        () = interrupted => {
            eprintln!("W: interrupted");
            None
        }
        done = work => Some(done),
    }
}
