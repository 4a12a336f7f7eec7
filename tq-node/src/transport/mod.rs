//! The peer transport: one mutual-TLS connection per pair of sleds, framed
//! [`PeerMsg`]s, reconnection with capped exponential backoff, and
//! connect/disconnect events for the agent.
//!
//! # One connection per pair
//!
//! Only the sled with the smaller [`BaseboardId`] dials; the larger one only
//! accepts, and refuses connections from larger ids. So there is never more
//! than one live connection per pair, and no tie-break race. A new accepted
//! connection from a peer replaces the old one (the peer dials again only
//! when it considers the old one dead, e.g. after a restart).
//!
//! The dialer retries after `backoff_min`, doubling after each failure up to
//! `backoff_max`, and starts again from `backoff_min` once a connection has
//! been up. So a restarted larger-id sled is reconnected within about
//! `backoff_max` of listening again: keep `backoff_max` short (seconds).
//!
//! # Establishing a connection
//!
//! After the TLS handshake (rack CA only, both sides authenticated, see
//! [`crate::tls`]) each side reads the peer's id from its certificate, the
//! only source of identity. The dialer checks it is the sled it meant to
//! reach; the acceptor checks it is a configured peer with a smaller id. Then
//! the dialer sends [`frame::HELLO`](crate::frame::HELLO) and the acceptor
//! answers with it, so each side knows the other accepted the link before
//! reporting [`TransportEvent::Connected`]: a refused link produces no events
//! on either side.
//!
//! # Events
//!
//! For each peer, events come in order: `Connected`, its `Message`s, then
//! `Disconnected`, before any later `Connected`. A sender waits for room in
//! the event channel (backpressure on that peer's socket). No events are
//! sent once shutdown has begun.

mod connection;
mod dialer;
mod handshake;
mod listener;
mod slot;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tq_types::{BaseboardId, PeerMsg};
use tracing::{debug, error};

use crate::tls::Identity;
use slot::Slot;

/// Bound on TCP connect plus TLS handshake plus hello exchange.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Bound on incoming connections still in their handshake; more are dropped.
pub const MAX_PENDING_HANDSHAKES: usize = 64;

/// What the transport reports to the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportEvent {
    /// A verified connection to this peer is up.
    Connected(BaseboardId),
    /// The connection to this peer went down.
    Disconnected(BaseboardId),
    /// A message arrived from this peer (the id from its certificate).
    Message {
        /// The sender, as identified by its certificate.
        from: BaseboardId,
        /// The message (boxed: it may carry whole configurations).
        msg: Box<PeerMsg>,
    },
}

/// Everything the transport needs.
#[derive(Debug)]
pub struct TransportConfig {
    /// This sled's id; should match the certificate in `tls`.
    pub me: BaseboardId,
    /// The bound listener to accept peers on (the transport binds nothing).
    pub listener: TcpListener,
    /// Every peer and its listen address. Only addresses of peers with a
    /// larger id than `me` are dialed; an entry for `me` is ignored.
    pub peers: BTreeMap<BaseboardId, SocketAddr>,
    /// This sled's TLS identity.
    pub tls: Identity,
    /// Messages queued per peer before its connection is dropped (min 1).
    pub queue_len: usize,
    /// First reconnect delay (at least 1 ms is used).
    pub backoff_min: Duration,
    /// Largest reconnect delay.
    pub backoff_max: Duration,
}

impl TransportConfig {
    /// The default per-peer outbound queue length.
    pub const DEFAULT_QUEUE_LEN: usize = 1024;
    /// The default first reconnect delay.
    pub const DEFAULT_BACKOFF_MIN: Duration = Duration::from_millis(100);
    /// The default largest reconnect delay.
    pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(2);

    /// A configuration with the default queue length and backoff.
    pub fn new(
        me: BaseboardId,
        listener: TcpListener,
        peers: BTreeMap<BaseboardId, SocketAddr>,
        tls: Identity,
    ) -> Self {
        TransportConfig {
            me,
            listener,
            peers,
            tls,
            queue_len: Self::DEFAULT_QUEUE_LEN,
            backoff_min: Self::DEFAULT_BACKOFF_MIN,
            backoff_max: Self::DEFAULT_BACKOFF_MAX,
        }
    }
}

/// A handle on a running transport; cheap to clone. Dropping every handle,
/// or the event receiver, also stops the transport, without waiting.
#[derive(Clone, Debug)]
pub struct TransportHandle {
    inner: Arc<HandleInner>,
}

#[derive(Debug)]
struct HandleInner {
    slots: Arc<BTreeMap<BaseboardId, Slot>>,
    stop: watch::Sender<bool>,
    /// Yields `None` once every task has exited.
    tasks: tokio::sync::Mutex<Option<mpsc::Receiver<()>>>,
}

/// Starts the transport on the current tokio runtime (must be called from
/// within one) and returns its handle.
pub fn spawn(config: TransportConfig, events: mpsc::Sender<TransportEvent>) -> TransportHandle {
    if config.tls.sled_id() != Some(&config.me) {
        error!(me = %config.me, cert = ?config.tls.identity(), "TLS certificate is not this sled's");
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let (alive_tx, alive_rx) = mpsc::channel(1);
    let slots: Arc<BTreeMap<_, _>> = Arc::new(
        config
            .peers
            .keys()
            .filter(|p| **p != config.me)
            .map(|p| (p.clone(), Slot::new()))
            .collect(),
    );
    let backoff_min = config.backoff_min.max(Duration::from_millis(1));
    let ctx = Arc::new(Ctx {
        me: config.me.clone(),
        acceptor: config.tls.acceptor(),
        connector: config.tls.connector(),
        slots: slots.clone(),
        events,
        queue_len: config.queue_len.max(1),
        backoff_min,
        backoff_max: config.backoff_max.max(backoff_min),
        stop: Stop(stop_rx),
        _alive: alive_tx,
    });
    tokio::spawn(listener::run(ctx.clone(), config.listener));
    for (peer, addr) in config.peers {
        if peer > config.me {
            tokio::spawn(dialer::run(ctx.clone(), peer, addr));
        }
    }
    TransportHandle {
        inner: Arc::new(HandleInner {
            slots,
            stop: stop_tx,
            tasks: tokio::sync::Mutex::new(Some(alive_rx)),
        }),
    }
}

impl TransportHandle {
    /// Queues `msg` for `to`. Without a live connection the message is
    /// dropped (the protocol resends on connect). If `to`'s queue is full,
    /// its connection is dropped with the queue, and re-established.
    pub fn send(&self, to: &BaseboardId, msg: PeerMsg) {
        match self.inner.slots.get(to) {
            Some(slot) => slot.send(to, msg),
            None => debug!(peer = %to, kind = msg.kind.name(), "dropping message to unknown peer"),
        }
    }

    /// Stops every task of the transport and closes its listener and
    /// connections; returns once all are gone. Later calls (from clones)
    /// return once the first has finished.
    pub async fn shutdown(self) {
        self.inner.stop.send_replace(true);
        let mut tasks = self.inner.tasks.lock().await;
        if let Some(rx) = tasks.as_mut() {
            // Nothing is ever sent: this returns when every task has dropped
            // its sender, i.e. exited.
            while rx.recv().await.is_some() {}
        }
        *tasks = None;
    }
}

/// State shared by the transport's tasks.
struct Ctx {
    me: BaseboardId,
    acceptor: TlsAcceptor,
    connector: TlsConnector,
    slots: Arc<BTreeMap<BaseboardId, Slot>>,
    events: mpsc::Sender<TransportEvent>,
    queue_len: usize,
    backoff_min: Duration,
    backoff_max: Duration,
    stop: Stop,
    /// Held by every task (through `Arc<Ctx>`); see `HandleInner::tasks`.
    _alive: mpsc::Sender<()>,
}

impl Ctx {
    /// Completes once the transport should stop: shutdown began, or nobody
    /// receives events any more.
    async fn stopped(&self) {
        tokio::select! {
            () = self.stop.wait() => {}
            () = self.events.closed() => {}
        }
    }

    fn is_stopped(&self) -> bool {
        self.stop.is_stopped() || self.events.is_closed()
    }

    /// Sends an event, unless the transport stops first; false if not sent.
    async fn emit(&self, event: TransportEvent) -> bool {
        tokio::select! {
            biased;
            () = self.stop.wait() => false,
            sent = self.events.send(event) => sent.is_ok(),
        }
    }

    /// Sleeps for `delay`; false if the transport stops instead.
    async fn sleep(&self, delay: Duration) -> bool {
        tokio::select! {
            () = self.stopped() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }
}

/// The shutdown signal: set by [`TransportHandle::shutdown`], or implied
/// when every handle is gone.
#[derive(Clone, Debug)]
struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Completes once shutdown has begun.
    async fn wait(&self) {
        let mut rx = self.0.clone();
        // An error means every handle is gone: stop too.
        let _ = rx.wait_for(|stopped| *stopped).await;
    }

    fn is_stopped(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }
}
