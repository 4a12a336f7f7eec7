//! One established connection: registers it for its peer, reports
//! `Connected`, moves frames both ways until something ends it, then reports
//! `Disconnected`.

use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};
use tq_types::{BaseboardId, PeerMsg};
use tracing::{info, warn};

use super::{Ctx, TransportEvent};
use crate::frame::{self, FrameError};

/// Why a connection ended.
enum End {
    /// Reading or writing failed, or the peer broke the framing.
    Frame(FrameError),
    /// The link was dropped: outbound queue full, or superseded by a newer
    /// connection from the same peer.
    Dropped,
    /// The event receiver is gone, or shutdown began.
    Stopped,
}

/// Runs a verified connection to `peer` until it ends.
pub(super) async fn run<S>(ctx: &Ctx, peer: BaseboardId, stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some(slot) = ctx.slots.get(&peer) else { return };
    let generation = slot.supersede();
    // Wait for the previous connection to this peer to report its end.
    let _session = tokio::select! {
        guard = slot.session.lock() => guard,
        () = ctx.stopped() => return,
    };
    let (queue_tx, queue_rx) = mpsc::channel(ctx.queue_len);
    let (close_tx, close_rx) = oneshot::channel();
    if !slot.install(generation, queue_tx, close_tx) {
        info!(%peer, "connection superseded by a newer one before it started");
        return;
    }
    if !ctx.emit(TransportEvent::Connected(peer.clone())).await {
        slot.remove(generation);
        return;
    }
    info!(%peer, "peer connected");

    let (mut reader, mut writer) = tokio::io::split(stream);
    // Biased: once told to close, send nothing more from the queue.
    let end = tokio::select! {
        biased;
        () = ctx.stopped() => End::Stopped,
        _ = close_rx => End::Dropped,
        end = read_loop(ctx, &peer, &mut reader) => end,
        end = write_loop(&peer, &mut writer, queue_rx) => end,
    };
    slot.remove(generation);
    // Close the socket before reporting, so a reconnect can follow at once.
    drop((reader, writer));

    match &end {
        End::Frame(e) if e.is_protocol_violation() => {
            warn!(%peer, reason = %e, "closing connection: peer broke the framing");
        }
        End::Frame(e) => info!(%peer, reason = %e, "connection lost"),
        End::Dropped => info!(%peer, "connection dropped"),
        End::Stopped => info!(%peer, "connection closed"),
    }
    if !ctx.is_stopped() {
        ctx.emit(TransportEvent::Disconnected(peer)).await;
    }
}

/// Delivers the peer's messages as events.
async fn read_loop<S: AsyncRead>(ctx: &Ctx, peer: &BaseboardId, r: &mut ReadHalf<S>) -> End {
    loop {
        match frame::read_frame(r).await {
            Ok(msg) => {
                if !ctx
                    .emit(TransportEvent::Message { from: peer.clone(), msg: Box::new(msg) })
                    .await
                {
                    return End::Stopped;
                }
            }
            Err(e) => return End::Frame(e),
        }
    }
}

/// Sends queued messages.
async fn write_loop<S: AsyncWrite>(
    peer: &BaseboardId,
    w: &mut WriteHalf<S>,
    mut queue: mpsc::Receiver<PeerMsg>,
) -> End {
    while let Some(msg) = queue.recv().await {
        match frame::write_frame(w, &msg).await {
            Ok(()) => {}
            Err(e @ FrameError::Io(_)) => return End::Frame(e),
            Err(e) => {
                warn!(%peer, kind = msg.kind.name(), error = %e, "dropping unsendable message")
            }
        }
    }
    End::Dropped
}
