//! Starting and stopping one control-plane replica: its ledger store, its
//! replica task and its operator API.

use std::net::SocketAddr;
use std::sync::Arc;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::actions::Agents;
use crate::config::CtlConfig;
use crate::replica::Replica;
use crate::store::{Store, StoreError};

/// Why a replica could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The ledger store cannot be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The operator API cannot listen.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The control plane's TLS identity cannot be loaded, or its clients
    /// built.
    #[error("TLS identity: {0}")]
    Tls(String),
    /// The authority key cannot be loaded.
    #[error("authority key: {0}")]
    Authority(String),
    /// No OS randomness.
    #[error("no OS randomness: {0}")]
    Random(String),
}

/// A running replica.
pub struct CtlHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl CtlHandle {
    /// The operator API's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the replica and its API and waits for them.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Opens the ledger store (running its migrations) and starts the replica
/// and its operator API.
pub async fn start(config: &CtlConfig) -> Result<CtlHandle, StartError> {
    let identity = config.tls.load().map_err(|e| StartError::Tls(e.to_string()))?;
    if *identity.identity() != tq_node::tls::CertIdentity::ControlPlane {
        return Err(StartError::Tls(format!(
            "{} is not the control plane's certificate",
            config.tls.cert.display()
        )));
    }
    let agents = Agents::new(config, &identity).map_err(|e| StartError::Tls(e.to_string()))?;
    let authority = tq_node::authority::load(&config.authority)
        .map_err(|e| StartError::Authority(e.to_string()))?;
    let store = Store::open(&config.db).await?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| StartError::Random(e.to_string()))?;
    let replica = Replica::new(
        config.clone(),
        store,
        agents,
        Arc::new(authority),
        ChaCha20Rng::from_seed(seed),
    )
    .await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| StartError::Bind { addr: config.listen, source })?;
    let addr = listener.local_addr().unwrap_or(config.listen);
    let (stop, stop_rx) = watch::channel(false);
    let (commands, command_rx) = mpsc::channel(64);
    let run = tokio::spawn(replica.run(command_rx, stop_rx.clone()));
    let router = crate::api::router(config.rack_id, commands);
    let mut api_stop = stop_rx;
    let serve = tokio::spawn(async move {
        let shutdown = async move {
            let _ = api_stop.wait_for(|s| *s).await;
        };
        if let Err(error) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
            tracing::error!(%error, "operator API failed");
        }
    });
    tracing::info!(replica = %config.replica, %addr, db = %redact_db(&config.db), "control plane started");
    Ok(CtlHandle { addr, stop, tasks: vec![run, serve] })
}

/// Starts a replica ([`start`]), runs it until `stop` completes, then
/// shuts it down: the whole life of a `tq-ctl` process.
pub async fn run_until(
    config: &CtlConfig,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), StartError> {
    let handle = start(config).await?;
    stop.await;
    handle.shutdown().await;
    tracing::info!(replica = %config.replica, "control plane stopped");
    Ok(())
}

/// The database URL without its credentials, for logs.
fn redact_db(db: &str) -> String {
    let split = db
        .split_once("://")
        .and_then(|(scheme, rest)| rest.rsplit_once('@').map(|(_, host)| (scheme, host)));
    match split {
        Some((scheme, host)) => format!("{scheme}://<credentials>@{host}"),
        None => db.to_owned(),
    }
}
