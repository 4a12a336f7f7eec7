//! Establishing a verified link, in either direction: TLS, the peer's id
//! from its certificate, the checks on it, and the hello exchange.

use std::net::SocketAddr;

use tokio::net::TcpStream;
use tokio_rustls::{client, server};
use tq_types::BaseboardId;

use super::Ctx;
use crate::frame::{self, FrameError};
use crate::tls::{self, TlsError};

/// Why a link could not be established.
#[derive(Debug, thiserror::Error)]
pub(super) enum HandshakeError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("TLS handshake: {0}")]
    Tls(std::io::Error),
    #[error("peer certificate: {0}")]
    Identity(#[from] TlsError),
    #[error("{0} is not a configured peer")]
    NotAPeer(BaseboardId),
    #[error("{0} does not have a smaller id, so must not dial us")]
    WrongDirection(BaseboardId),
    #[error("dialed {expected} but the certificate is {found}'s")]
    WrongPeer { expected: BaseboardId, found: BaseboardId },
    #[error("hello: {0}")]
    Hello(#[from] FrameError),
}

impl HandshakeError {
    /// Whether this is worth a warning (a trust or configuration problem)
    /// rather than a peer that is merely down.
    pub(super) fn is_refusal(&self) -> bool {
        !matches!(self, HandshakeError::Connect(_))
    }
}

/// Dials `peer` at `addr`: the link is returned only if the server proves it
/// is `peer` and then accepts us.
pub(super) async fn dial(
    ctx: &Ctx,
    peer: &BaseboardId,
    addr: SocketAddr,
) -> Result<client::TlsStream<TcpStream>, HandshakeError> {
    let tcp = TcpStream::connect(addr).await.map_err(HandshakeError::Connect)?;
    // Best effort: small protocol messages should not wait for Nagle.
    let _ = tcp.set_nodelay(true);
    let mut stream =
        ctx.connector.connect(tls::server_name(), tcp).await.map_err(HandshakeError::Tls)?;
    let found = tls::peer_identity(stream.get_ref().1)?;
    if found != *peer {
        return Err(HandshakeError::WrongPeer { expected: peer.clone(), found });
    }
    frame::write_hello(&mut stream).await?;
    // With TLS 1.3 the server checks our certificate after the client
    // finishes the handshake: its hello is what says we were accepted.
    frame::read_hello(&mut stream).await?;
    Ok(stream)
}

/// Accepts a link on `tcp`: the peer must be a configured sled with a
/// smaller id than ours (only smaller ids dial). Returns the peer's id.
pub(super) async fn accept(
    ctx: &Ctx,
    tcp: TcpStream,
) -> Result<(BaseboardId, server::TlsStream<TcpStream>), HandshakeError> {
    let _ = tcp.set_nodelay(true);
    let mut stream = ctx.acceptor.accept(tcp).await.map_err(HandshakeError::Tls)?;
    let peer = tls::peer_identity(stream.get_ref().1)?;
    if !ctx.slots.contains_key(&peer) {
        return Err(HandshakeError::NotAPeer(peer));
    }
    if peer >= ctx.me {
        return Err(HandshakeError::WrongDirection(peer));
    }
    frame::read_hello(&mut stream).await?;
    frame::write_hello(&mut stream).await?;
    Ok((peer, stream))
}
