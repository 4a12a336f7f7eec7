//! Waiting for the signal that asks a service to stop.

/// Returns when SIGTERM or SIGINT arrives (only ctrl-c where SIGTERM
/// cannot be watched).
pub async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let (Ok(mut term), Ok(mut int)) =
            (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM"),
                _ = int.recv() => tracing::info!("SIGINT"),
            }
            return;
        }
        tracing::warn!("cannot watch SIGTERM; waiting for ctrl-c only");
    }
    let _ = tokio::signal::ctrl_c().await;
}
