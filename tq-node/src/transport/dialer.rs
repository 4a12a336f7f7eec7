//! The dial loop for one peer with a larger id: connect, run the
//! connection, retry with capped exponential backoff.

use std::net::SocketAddr;
use std::sync::Arc;

use tq_types::BaseboardId;
use tracing::{debug, warn};

use super::{Ctx, HANDSHAKE_TIMEOUT, connection, handshake};

/// Keeps a connection to `peer` up until shutdown.
pub(super) async fn run(ctx: Arc<Ctx>, peer: BaseboardId, addr: SocketAddr) {
    let mut backoff = ctx.backoff_min;
    loop {
        let attempt = tokio::select! {
            r = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake::dial(&ctx, &peer, addr)) => r,
            () = ctx.stopped() => return,
        };
        let delay = match attempt {
            Ok(Ok(stream)) => {
                connection::run(&ctx, peer.clone(), stream).await;
                backoff = ctx.backoff_min;
                ctx.backoff_min
            }
            failed => {
                match failed {
                    Ok(Err(e)) if e.is_refusal() => {
                        warn!(%peer, %addr, reason = %e, "could not establish peer connection");
                    }
                    Ok(Err(e)) => debug!(%peer, %addr, reason = %e, "peer unreachable"),
                    _ => warn!(%peer, %addr, "peer connection timed out in its handshake"),
                }
                let delay = backoff;
                backoff = backoff.saturating_mul(2).min(ctx.backoff_max);
                delay
            }
        };
        if !ctx.sleep(delay).await {
            return;
        }
    }
}
