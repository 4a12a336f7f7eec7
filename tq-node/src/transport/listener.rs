//! The accept loop: one task per incoming connection, with a bounded number
//! of handshakes in progress.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::warn;

use super::{Ctx, HANDSHAKE_TIMEOUT, MAX_PENDING_HANDSHAKES, connection, handshake};

/// Pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Accepts peers until shutdown, then closes the listener.
pub(super) async fn run(ctx: Arc<Ctx>, listener: TcpListener) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = ctx.stopped() => break,
        };
        let (tcp, addr) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!(error = %e, "accept failed");
                if !ctx.sleep(ACCEPT_ERROR_PAUSE).await {
                    break;
                }
                continue;
            }
        };
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            warn!(%addr, "too many handshakes in progress: dropping connection");
            continue;
        };
        tokio::spawn(accept_one(ctx.clone(), tcp, addr, permit));
    }
    drop(listener);
}

/// Handshakes with one incoming connection and runs it.
async fn accept_one(ctx: Arc<Ctx>, tcp: TcpStream, addr: SocketAddr, permit: OwnedSemaphorePermit) {
    let accepted = tokio::select! {
        r = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake::accept(&ctx, tcp)) => r,
        () = ctx.stopped() => return,
    };
    drop(permit);
    match accepted {
        Ok(Ok((peer, stream))) => connection::run(&ctx, peer, stream).await,
        Ok(Err(e)) => warn!(%addr, reason = %e, "refused incoming connection"),
        Err(_) => warn!(%addr, "refused incoming connection: handshake timed out"),
    }
}
