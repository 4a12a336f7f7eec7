//! Helpers for the transport tests: a generated rack, sleds on 127.0.0.1,
//! raw TLS peers and bounded waits.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::client;
use tq_node::frame;
use tq_node::keys::{self, RackKeys};
use tq_node::tls::{self, Identity};
use tq_node::transport::{self, TransportConfig, TransportEvent, TransportHandle};
use tq_types::{BaseboardId, Epoch, PeerMsg, PeerMsgKind, RackId};

/// Bound on every wait in these tests.
pub const WAIT: Duration = Duration::from_secs(20);

/// Awaits `fut`, failing the test if it takes longer than [`WAIT`].
pub async fn within<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(WAIT, fut).await.expect("timed out")
}

/// A rack's keys in a temporary directory.
pub struct Rack {
    pub dir: tempfile::TempDir,
    pub keys: RackKeys,
}

impl Rack {
    pub fn new(sleds: usize) -> Rack {
        let dir = tempfile::tempdir().unwrap();
        let keys = keys::generate_rack(dir.path(), sleds).unwrap();
        Rack { dir, keys }
    }

    /// Sled `i`'s TLS identity.
    pub fn identity(&self, i: usize) -> Identity {
        let files = &self.keys.sleds[i].files;
        Identity::load(&self.keys.ca_cert, &files.cert, &files.key).unwrap()
    }

    /// The control plane's TLS identity.
    pub fn control_identity(&self) -> Identity {
        let c = &self.keys.control;
        Identity::load(&self.keys.ca_cert, &c.cert, &c.key).unwrap()
    }
}

/// Sled `i`'s id.
pub fn id(i: usize) -> BaseboardId {
    format!("PPP-PPPPPPP:{i:011}").parse().unwrap()
}

/// A small peer message, told apart by `n`.
pub fn msg(n: u64) -> PeerMsg {
    let rack_id: RackId = serde_json::from_str("\"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0\"").unwrap();
    PeerMsg { rack_id, kind: PeerMsgKind::GetShare(Epoch(n)) }
}

pub async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// A running transport and its event stream.
pub struct Sled {
    pub id: BaseboardId,
    pub addr: SocketAddr,
    pub handle: TransportHandle,
    pub events: mpsc::Receiver<TransportEvent>,
}

impl Sled {
    /// Starts sled `i` of `rack` on `listener` with fast backoff.
    pub fn start(
        rack: &Rack,
        i: usize,
        listener: TcpListener,
        peers: BTreeMap<BaseboardId, SocketAddr>,
        tweak: impl FnOnce(&mut TransportConfig),
    ) -> Sled {
        let addr = listener.local_addr().unwrap();
        let mut config = TransportConfig::new(id(i), listener, peers, rack.identity(i));
        config.backoff_min = Duration::from_millis(10);
        config.backoff_max = Duration::from_millis(200);
        tweak(&mut config);
        let (tx, events) = mpsc::channel(64);
        Sled { id: id(i), addr, handle: transport::spawn(config, tx), events }
    }

    /// The next event.
    pub async fn next(&mut self) -> TransportEvent {
        within(self.events.recv()).await.expect("transport closed its event channel")
    }

    /// Asserts that no event is waiting right now.
    pub fn assert_quiet(&mut self) {
        match self.events.try_recv() {
            Err(mpsc::error::TryRecvError::Empty) => {}
            other => panic!("{}: unexpected event {other:?}", self.id),
        }
    }

    pub async fn shutdown(self) {
        within(self.handle.shutdown()).await;
    }
}

/// Starts sleds `0..n` of `rack`, all listening before any dials, each with
/// every other as a peer.
pub async fn mesh(rack: &Rack, n: usize) -> Vec<Sled> {
    let mut listeners = Vec::new();
    for _ in 0..n {
        listeners.push(bind().await);
    }
    let addrs: BTreeMap<BaseboardId, SocketAddr> =
        listeners.iter().enumerate().map(|(i, l)| (id(i), l.local_addr().unwrap())).collect();
    listeners
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let peers = addrs.iter().filter(|(p, _)| **p != id(i)).map(|(p, a)| (p.clone(), *a));
            Sled::start(rack, i, l, peers.collect(), |_| {})
        })
        .collect()
}

/// Dials `addr` as `identity`, outside any transport: TLS plus the hello
/// exchange. An error means the transport refused us.
pub async fn raw_connect(
    identity: &Identity,
    addr: SocketAddr,
) -> std::io::Result<client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let mut stream = identity.connector().connect(tls::server_name(), tcp).await?;
    frame::write_hello(&mut stream).await.map_err(std::io::Error::other)?;
    frame::read_hello(&mut stream).await.map_err(std::io::Error::other)?;
    Ok(stream)
}

/// Accepts one connection on `listener` as `identity`, outside any
/// transport: TLS plus the hello exchange.
pub async fn raw_accept(
    listener: &TcpListener,
    identity: &Identity,
) -> tokio_rustls::server::TlsStream<TcpStream> {
    let (tcp, _) = within(listener.accept()).await.unwrap();
    let mut stream = within(identity.acceptor().accept(tcp)).await.unwrap();
    within(frame::read_hello(&mut stream)).await.unwrap();
    within(frame::write_hello(&mut stream)).await.unwrap();
    stream
}

/// Reads until the stream ends, checking it ends (within [`WAIT`]) and
/// returning any frames received before that.
pub async fn read_until_closed<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> Vec<PeerMsg> {
    let mut msgs = Vec::new();
    within(async {
        while let Ok(m) = frame::read_frame(stream).await {
            msgs.push(m);
        }
    })
    .await;
    msgs
}
