//! The sled agent: the node role on durable files, mutual-TLS peer links, a
//! control API for the control plane and a local API for secret use.
//!
//! One task (the actor) owns the node. The transport and the two HTTP
//! servers talk to it through one queue, so inputs are handled one at a
//! time, each followed by the embedder step (write, then send, then
//! answer). A failed durable write stops the actor: nothing is sent after
//! it, and every later request is answered "unavailable".

mod actor;
pub(crate) mod request;

pub use self::request::{KeyError, LocalKey};

use std::net::SocketAddr;
use std::path::PathBuf;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use trust_quorum::node::PersistentStateError;
use trust_quorum::{Node, NodeCtx, PersistentState};

use self::actor::{Actor, Stop};
use self::request::{Input, Requester};
use crate::config::AgentConfig;
use crate::storage::{FILE_NAMES, Storage, StorageError};
use crate::transport::{self, TransportConfig};
use crate::unlock::Token;
use crate::{api, local, tls};

/// Bound on queued inputs; senders wait when it is full.
const INPUT_QUEUE: usize = 1024;

/// Why an agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Neither copy of the durable state is usable, or the store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A data folder cannot be created.
    #[error("cannot create data folder {path}: {source}")]
    DataDir {
        /// The folder.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A valid file holds a state that does not decode, or that is not a
    /// valid state of this sled.
    #[error("the durable state in {paths:?} is unusable: {reason}")]
    Decode {
        /// The two copies.
        paths: [PathBuf; 2],
        /// Why: the typed decode or validation error, naming the broken
        /// rule and its epoch.
        reason: PersistentStateError,
    },
    /// The TLS identity cannot be loaded.
    #[error("TLS identity: {0}")]
    Tls(String),
    /// A listener cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The local API's token cannot be read or created.
    #[error("local API token: {0}")]
    Token(std::io::Error),
    /// No OS randomness to seed the node's generator.
    #[error("no OS randomness: {0}")]
    Random(String),
    /// The durable state trusts another authority than the configuration
    /// names (rotation is not supported: docs/protocol.md section 8.4).
    #[error("the durable state trusts authority {stored}, the configuration names {configured}")]
    AuthorityMismatch {
        /// The key in the durable state.
        stored: tq_types::AuthorityKey,
        /// The key in the configuration.
        configured: tq_types::AuthorityKey,
    },
}

/// A running agent.
pub struct AgentHandle {
    peer_addr: SocketAddr,
    control_addr: SocketAddr,
    local_addr: SocketAddr,
    token: std::sync::Arc<Token>,
    stop: watch::Sender<bool>,
    actor: JoinHandle<Result<(), Stop>>,
    servers: Vec<JoinHandle<()>>,
    transport: transport::TransportHandle,
}

impl AgentHandle {
    /// Where peers connect.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// The control API.
    pub fn control_addr(&self) -> SocketAddr {
        self.control_addr
    }

    /// The local secret-use API.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The local API's bearer token.
    pub fn token(&self) -> &str {
        self.token.expose()
    }

    /// Stops everything the agent started and waits for it. Returns the
    /// reason if the agent had stopped on its own (a failed write).
    pub async fn shutdown(self) -> Result<(), String> {
        let _ = self.stop.send(true);
        for server in self.servers {
            let _ = server.await;
        }
        self.transport.shutdown().await;
        match self.actor.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(stop)) => Err(stop.to_string()),
            Err(join) => Err(join.to_string()),
        }
    }

    /// Waits until the agent stops on its own or `shutdown` is asked
    /// through `signal`; then stops everything.
    pub async fn run_until(
        mut self,
        signal: impl std::future::Future<Output = ()>,
    ) -> Result<(), String> {
        tokio::select! {
            result = &mut self.actor => {
                let _ = self.stop.send(true);
                for server in self.servers { let _ = server.await; }
                self.transport.shutdown().await;
                match result {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(stop)) => Err(stop.to_string()),
                    Err(join) => Err(join.to_string()),
                }
            }
            () = signal => self.shutdown().await,
        }
    }
}

/// Starts a sled agent: reads its durable state (repairing a bad copy),
/// binds its three listeners and starts the actor.
pub async fn start(config: &AgentConfig) -> Result<AgentHandle, StartError> {
    let [a, b] = &config.data_dirs;
    let paths = [a.join(FILE_NAMES[0]), b.join(FILE_NAMES[1])];
    for dir in &config.data_dirs {
        std::fs::create_dir_all(dir)
            .map_err(|source| StartError::DataDir { path: dir.clone(), source })?;
    }
    let opened = Storage::open(paths.clone())?;
    for repair in &opened.repaired {
        tracing::warn!(sled = %config.id, %repair, "durable state repaired");
    }
    let state = match &opened.payload {
        Some(bytes) => PersistentState::decode(bytes)
            .map_err(|reason| StartError::Decode { paths: paths.clone(), reason })?,
        None => PersistentState::new(config.authority_key),
    };
    if *state.authority() != config.authority_key {
        return Err(StartError::AuthorityMismatch {
            stored: *state.authority(),
            configured: config.authority_key,
        });
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| StartError::Random(e.to_string()))?;
    let rng = ChaCha20Rng::from_seed(seed);
    // Refuses a state whose shares are not this sled's (for example a copy
    // of another sled's files).
    let mut ctx = NodeCtx::try_with_persistent_state(config.id.clone(), state, rng)
        .map_err(|invalid| StartError::Decode { paths: paths.clone(), reason: invalid.into() })?;
    let node = Node::new(&mut ctx);
    let latest = ctx.persistent_state().latest_committed_epoch();
    tracing::info!(sled = %config.id, generation = opened.storage.generation(), latest_committed = ?latest, "state loaded");

    let identity = tls::Identity::load(&config.tls.ca, &config.tls.cert, &config.tls.key)
        .map_err(|e| StartError::Tls(e.to_string()))?;
    if identity.sled_id() != Some(&config.id) {
        return Err(StartError::Tls(format!(
            "the certificate {} is not for sled {}",
            config.tls.cert.display(),
            config.id
        )));
    }
    let bind = |addr: SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })
    };
    let peer_listener = bind(config.peer_listen).await?;
    let control_listener = bind(config.control_listen).await?;
    let local_listener = bind(config.local_listen).await?;
    let addr = |l: &tokio::net::TcpListener, fallback| l.local_addr().unwrap_or(fallback);
    let peer_addr = addr(&peer_listener, config.peer_listen);
    let control_addr = addr(&control_listener, config.control_listen);
    let local_addr = addr(&local_listener, config.local_listen);

    let token_dir = config.data_dirs.first().cloned().unwrap_or_default();
    let token =
        Token::load_or_create(&token_dir.join("local-api.token")).map_err(StartError::Token)?;
    let token = std::sync::Arc::new(token);

    let (inputs, input_rx) = mpsc::channel(INPUT_QUEUE);
    let (event_tx, mut event_rx) = mpsc::channel(INPUT_QUEUE);
    let transport = transport::spawn(
        TransportConfig::new(
            config.id.clone(),
            peer_listener,
            config.peers.iter().map(|p| (p.id.clone(), p.addr)).collect(),
            identity.clone(),
        ),
        event_tx,
    );
    let (stop, stop_rx) = watch::channel(false);
    let (committed, committed_rx) = watch::channel(latest);
    let forward = inputs.clone();
    let mut forward_stop = stop_rx.clone();
    let forwarder = tokio::spawn(async move {
        loop {
            tokio::select! {
                event = event_rx.recv() => match event {
                    Some(event) => if forward.send(Input::Transport(event)).await.is_err() { return },
                    None => return,
                },
                _ = forward_stop.changed() => return,
            }
        }
    });
    let actor =
        Actor::new(config.id.clone(), node, ctx, opened.storage, transport.clone(), committed);
    let actor = tokio::spawn(actor.run(input_rx, stop_rx.clone()));
    let requester = Requester(inputs);
    let servers = vec![
        forwarder,
        serve(
            api::listener::ControlListener::spawn(
                control_listener,
                identity.acceptor(),
                stop_rx.clone(),
            )
            .map_err(|source| StartError::Bind { addr: control_addr, source })?,
            api::router(requester.clone()),
            stop_rx.clone(),
        ),
        serve(local_listener, local::router(requester, token.clone(), committed_rx), stop_rx),
    ];
    tracing::info!(sled = %config.id, %peer_addr, %control_addr, %local_addr, "agent started");
    Ok(AgentHandle { peer_addr, control_addr, local_addr, token, stop, actor, servers, transport })
}

fn serve<L>(listener: L, router: axum::Router, mut stop: watch::Receiver<bool>) -> JoinHandle<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        };
        if let Err(error) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
            tracing::error!(%error, "HTTP server failed");
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use tq_types::{BaseboardId, CommitRequest, Epoch, RackId, ReconfigureMsg, Threshold};
    use trust_quorum::crypto::authority::Authority;
    use trust_quorum::harness::Rack;

    use super::*;
    use crate::config::TlsPaths;

    fn sled(i: u8) -> BaseboardId {
        format!("P:{i}").parse().unwrap()
    }

    fn authority() -> Authority {
        Authority::from_secret_bytes(&[5; 32])
    }

    /// The states of three sleds after committing epoch 1.
    fn committed_states() -> Vec<PersistentState> {
        let ids: BTreeSet<BaseboardId> = (0..3).map(sled).collect();
        let authority = authority();
        let mut rack = Rack::new(ids.iter().cloned(), authority.public_key(), 1);
        let rack_id = RackId(uuid::Uuid::from_u128(1));
        let msg = ReconfigureMsg {
            rack_id,
            epoch: Epoch(1),
            last_committed_epoch: None,
            members: ids.clone(),
            threshold: Threshold(2),
            coordinator: sled(0),
        };
        let msg = authority.sign_reconfigure(msg).unwrap();
        rack.request(&sled(0), |n, ctx| n.coordinate_reconfiguration(ctx, msg)).unwrap().unwrap();
        rack.deliver_all().unwrap();
        let config = rack.state(&sled(0)).config(Epoch(1)).unwrap().clone();
        let certificate = authority.certify(&config).unwrap();
        for id in &ids {
            let req = CommitRequest { rack_id, epoch: Epoch(1), certificate };
            rack.request(id, |n, ctx| n.commit_configuration(ctx, req)).unwrap().unwrap();
        }
        ids.iter().map(|id| rack.state(id).clone()).collect()
    }

    /// Starts sled 0 on files holding `payload`, trusting `authority_key`;
    /// returns the start error.
    async fn start_with(payload: &[u8], authority_key: tq_types::AuthorityKey) -> StartError {
        let dir = tempfile::tempdir().unwrap();
        let data_dirs = [dir.path().join("a"), dir.path().join("b")];
        for d in &data_dirs {
            std::fs::create_dir_all(d).unwrap();
        }
        let paths = [data_dirs[0].join(FILE_NAMES[0]), data_dirs[1].join(FILE_NAMES[1])];
        Storage::open(paths).unwrap().storage.write(payload).unwrap();
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let missing = dir.path().join("missing.pem");
        let config = AgentConfig {
            id: sled(0),
            data_dirs,
            peer_listen: any,
            control_listen: any,
            local_listen: any,
            authority_key,
            tls: TlsPaths { ca: missing.clone(), cert: missing.clone(), key: missing },
            peers: Vec::new(),
        };
        match start(&config).await {
            Ok(_) => panic!("started on a bad state"),
            Err(err) => err,
        }
    }

    /// [`start_with`] under the authority the states trust, for a decode
    /// error; returns its message.
    async fn start_on(payload: &[u8]) -> String {
        match start_with(payload, authority().public_key()).await {
            err @ StartError::Decode { .. } => err.to_string(),
            other => panic!("not a decode error: {other}"),
        }
    }

    /// A state that trusts another authority than the configuration names
    /// is refused (rotation is out of scope).
    #[tokio::test]
    async fn a_state_of_another_authority_is_refused() {
        let states = committed_states();
        let other = Authority::from_secret_bytes(&[6; 32]).public_key();
        match start_with(&states[0].encode().unwrap(), other).await {
            StartError::AuthorityMismatch { stored, configured } => {
                assert_eq!(stored, authority().public_key());
                assert_eq!(configured, other);
            }
            err => panic!("not an authority mismatch: {err}"),
        }
    }

    /// A state that does not decode, or is another sled's, stops the start
    /// with a message naming the reason.
    #[tokio::test]
    async fn an_unusable_state_is_refused_with_its_reason() {
        let states = committed_states();
        let mut flipped = states[0].encode().unwrap();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        let msg = start_on(&flipped).await;
        assert!(msg.ends_with("is unusable: persistent state checksum mismatch"), "{msg}");
        let theirs = states[1].encode().unwrap();
        let msg = start_on(&theirs).await;
        assert!(msg.ends_with("share of epoch 1 is not this node's"), "{msg}");
        let msg = start_on(b"\x00old").await;
        assert!(msg.contains("format version 0, this build reads version 1"), "{msg}");
    }
}
