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
