//! The control API's listener: mutual TLS with the rack CA, and only the
//! control plane's certificate gets through.
//!
//! A task accepts TCP connections and runs each handshake in its own task
//! (bounded in number and in time), so a slow or hostile client cannot hold
//! up the others. A connection whose verified client certificate is not
//! the control plane's (a sled's, for instance) is closed with a warning:
//! a compromised sled must not be able to drive another sled's node role.
//! Completed connections reach the HTTP server through a queue.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::tls::{self, CertIdentity, TlsError};

/// The longest a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The most handshakes in progress at once; more connections are dropped.
const MAX_PENDING_HANDSHAKES: usize = 32;

/// Pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Why a control-API connection was refused.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("TLS handshake: {0}")]
    Tls(std::io::Error),
    #[error("client certificate: {0}")]
    Identity(#[from] TlsError),
    #[error("client certificate is {0:?}'s, not the control plane's")]
    NotControlPlane(CertIdentity),
    #[error("handshake timed out")]
    Timeout,
}

/// Connections that completed the handshake as the control plane; an
/// [`axum::serve::Listener`].
pub(crate) struct ControlListener {
    accepted: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl ControlListener {
    /// Starts accepting on `tcp` with `acceptor` until `stop` is set.
    pub(crate) fn spawn(
        tcp: TcpListener,
        acceptor: TlsAcceptor,
        stop: watch::Receiver<bool>,
    ) -> std::io::Result<ControlListener> {
        let local = tcp.local_addr()?;
        let (tx, accepted) = mpsc::channel(MAX_PENDING_HANDSHAKES);
        tokio::spawn(accept_loop(tcp, acceptor, tx, stop));
        Ok(ControlListener { accepted, local })
    }
}

impl axum::serve::Listener for ControlListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.accepted.recv().await {
            Some(accepted) => accepted,
            // The accept loop stopped: so is the server (graceful shutdown
            // fires on the same signal), so wait for it.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    mut stop: watch::Receiver<bool>,
) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let accepted = tokio::select! {
            r = tcp.accept() => r,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (stream, addr) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "control API: accept failed");
                tokio::select! {
                    () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        };
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            tracing::warn!(%addr, "control API: too many handshakes in progress; dropped");
            continue;
        };
        tokio::spawn(handshake(acceptor.clone(), stream, addr, permit, tx.clone()));
    }
}

async fn handshake(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    addr: SocketAddr,
    permit: OwnedSemaphorePermit,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let result = match tokio::time::timeout(HANDSHAKE_TIMEOUT, admit(acceptor, stream)).await {
        Ok(result) => result,
        Err(_) => Err(Refusal::Timeout),
    };
    drop(permit);
    match result {
        Ok(tls) => {
            // The server is gone only when shutting down.
            let _ = tx.send((tls, addr)).await;
        }
        Err(reason) => tracing::warn!(%addr, %reason, "control API: connection refused"),
    }
}

/// The handshake, then the identity check.
async fn admit(acceptor: TlsAcceptor, stream: TcpStream) -> Result<TlsStream<TcpStream>, Refusal> {
    let tls = acceptor.accept(stream).await.map_err(Refusal::Tls)?;
    let cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .ok_or(TlsError::NoPeerCertificate)?;
    match tls::cert_identity(cert)? {
        CertIdentity::ControlPlane => Ok(tls),
        other => Err(Refusal::NotControlPlane(other)),
    }
}
