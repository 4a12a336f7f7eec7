//! A local rack of sled agents in one test process, and a control plane
//! (`trust_quorum::harness::Controller`) that drives them over their
//! control APIs. Every wait is bounded.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects,
    missing_docs
)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tq_node::agent::{self, AgentHandle};
use tq_node::api::client::ControlClient;
use tq_node::config::{AgentConfig, PeerConfig, TlsPaths};
use tq_node::tls::Identity;
use tq_types::{BaseboardId, ConfigState, Epoch, RackId, Timestamp};
use trust_quorum::control::{ControlAction, ControlPlaneConfig, MemberCommitError};
use trust_quorum::harness::Controller;

pub fn sled(i: usize) -> BaseboardId {
    format!("PPP-PPPPPPP:{i:011}").parse().unwrap()
}

pub fn sleds(r: impl IntoIterator<Item = usize>) -> BTreeSet<BaseboardId> {
    r.into_iter().map(sled).collect()
}

pub fn now() -> Timestamp {
    let micros =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros();
    Timestamp::from_unix_micros(i64::try_from(micros).unwrap()).unwrap()
}

/// Loopback ports for the agents, which bind them later.
///
/// They come from below Linux's ephemeral range (32768 and up by default),
/// which every `bind(0)` and every outgoing connection's local port draws
/// from: a port taken from that range and released could be handed to a
/// concurrent test's connection before the agent binds it (it happened in
/// CI). A process-wide counter keeps the tests of one binary apart, the
/// process id spreads binaries, and a port some other program holds is
/// skipped.
fn free_ports(n: usize) -> Vec<SocketAddr> {
    use std::sync::atomic::{AtomicU32, Ordering};
    const FIRST: u32 = 20_000;
    const SPAN: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let spread = std::process::id() % 60 * 200;
    let mut ports = Vec::with_capacity(n);
    for _ in 0..SPAN {
        if ports.len() == n {
            break;
        }
        let offset = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = u16::try_from(FIRST + (spread + offset) % SPAN).unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if std::net::TcpListener::bind(addr).is_ok() {
            ports.push(addr);
        }
    }
    assert_eq!(ports.len(), n, "no free loopback ports below the ephemeral range");
    ports
}

pub struct LocalRack {
    pub dir: tempfile::TempDir,
    pub configs: BTreeMap<BaseboardId, AgentConfig>,
    pub agents: BTreeMap<BaseboardId, AgentHandle>,
    pub http: reqwest::Client,
    /// The control plane's TLS identity.
    pub control: Identity,
    pub cp: Controller,
    pub rng: ChaCha20Rng,
}

impl LocalRack {
    /// Keys and configurations for `n` sleds; no agent started yet.
    pub fn new(n: usize) -> LocalRack {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let generated = tq_node::keys::generate_rack(&keys, n).unwrap();
        let control =
            Identity::load(&generated.ca_cert, &generated.control.cert, &generated.control.key)
                .unwrap();
        let ports = free_ports(3 * n);
        let mut configs = BTreeMap::new();
        for i in 0..n {
            let config = AgentConfig {
                id: sled(i),
                data_dirs: [
                    dir.path().join(format!("sled-{i}/disk-a")),
                    dir.path().join(format!("sled-{i}/disk-b")),
                ],
                peer_listen: ports[3 * i],
                control_listen: ports[3 * i + 1],
                local_listen: ports[3 * i + 2],
                authority_key: generated.authority.key,
                tls: TlsPaths {
                    ca: keys.join("ca.pem"),
                    cert: keys.join(format!("{i}/cert.pem")),
                    key: keys.join(format!("{i}/key.pem")),
                },
                peers: (0..n)
                    .filter(|j| *j != i)
                    .map(|j| PeerConfig { id: sled(j), addr: ports[3 * j] })
                    .collect(),
            };
            configs.insert(sled(i), config);
        }
        LocalRack {
            dir,
            configs,
            agents: BTreeMap::new(),
            http: reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap(),
            control,
            cp: Controller::new(
                ControlPlaneConfig::default(),
                std::sync::Arc::new(tq_node::authority::load(&generated.authority.secret).unwrap()),
            ),
            rng: ChaCha20Rng::seed_from_u64(1),
        }
    }

    pub async fn start(&mut self, who: &BaseboardId) {
        let handle = agent::start(&self.configs[who]).await.unwrap();
        self.agents.insert(who.clone(), handle);
    }

    pub async fn start_all(&mut self) {
        let ids: Vec<BaseboardId> = self.configs.keys().cloned().collect();
        for id in ids {
            self.start(&id).await;
        }
    }

    pub async fn stop(&mut self, who: &BaseboardId) {
        if let Some(handle) = self.agents.remove(who) {
            handle.shutdown().await.unwrap();
        }
    }

    pub async fn shutdown(mut self) {
        let ids: Vec<BaseboardId> = self.agents.keys().cloned().collect();
        for id in ids {
            self.stop(&id).await;
        }
    }

    /// The control-plane client of `who`'s control API.
    pub fn client(&self, who: &BaseboardId) -> ControlClient {
        let c = &self.configs[who];
        ControlClient::new(&self.control, who.clone(), c.control_listen, Duration::from_secs(20))
            .unwrap()
    }

    /// A raw HTTPS client holding the control plane's certificate, and the
    /// base URL of `who`'s control API (for malformed requests).
    pub fn raw_control(&self, who: &BaseboardId) -> (reqwest::Client, String) {
        raw_client(&self.control, self.configs[who].control_listen)
    }

    /// One driver pass: tick, perform every action over HTTPS, report.
    pub async fn pass(&mut self) {
        let actions = self.cp.tick(now(), &mut self.rng);
        for action in actions {
            match action {
                ControlAction::Reconfigure { to, msg } => {
                    match self.client(&to).reconfigure(&msg).await {
                        Ok(result) => {
                            let _ =
                                self.cp.on_reconfigure_result(msg.msg.epoch, &to, result, now());
                        }
                        Err(_) => self.cp.on_unreachable(&to, now()),
                    }
                }
                ControlAction::PollCoordinator { to, epoch } => {
                    match self.client(&to).coordinator().await {
                        Ok(status) => {
                            let _ = self.cp.on_coordinator_status(epoch, &to, status, now());
                        }
                        Err(_) => self.cp.on_unreachable(&to, now()),
                    }
                }
                ControlAction::Commit { member, req, .. } => {
                    match self.client(&member).commit(&req).await {
                        Ok(r) => {
                            let r = r.map_err(MemberCommitError::Commit);
                            let _ = self.cp.on_commit_result(req.epoch, &member, r, now());
                        }
                        Err(_) => self.cp.on_unreachable(&member, now()),
                    }
                }
                ControlAction::PrepareAndCommit { member, req, .. } => {
                    match self.client(&member).prepare_and_commit(&req).await {
                        Ok(r) => {
                            let r = r.map_err(MemberCommitError::PrepareAndCommit);
                            let _ = self.cp.on_commit_result(req.config.epoch, &member, r, now());
                        }
                        Err(_) => self.cp.on_unreachable(&member, now()),
                    }
                }
                ControlAction::Activate { member } => {
                    let _ = self.cp.on_activated(&member, now());
                }
            }
        }
    }

    /// Drives passes until `epoch` is committed everywhere (bounded).
    pub async fn drive_until_committed(&mut self, epoch: Epoch) {
        let mut pace = tokio::time::interval(Duration::from_millis(20));
        for _ in 0..1_000 {
            pace.tick().await;
            self.pass().await;
            if self.cp.config(epoch).is_some_and(|c| c.state == ConfigState::Committed) {
                return;
            }
        }
        panic!("epoch {epoch} never committed: {:?}", self.cp.config(epoch));
    }

    /// Drives passes back to back, without pacing, until `epoch` is
    /// committed everywhere; returns when it became committing and when
    /// committed (bounded by a minute).
    pub async fn drive_tight(&mut self, epoch: Epoch) -> (std::time::Instant, std::time::Instant) {
        let start = std::time::Instant::now();
        let mut committing = None;
        while start.elapsed() < Duration::from_secs(60) {
            self.pass().await;
            let state = self.cp.config(epoch).map(|c| c.state);
            if committing.is_none() && state != Some(ConfigState::Preparing) {
                committing = Some(std::time::Instant::now());
            }
            if state == Some(ConfigState::Committed) {
                let done = std::time::Instant::now();
                return (committing.unwrap_or(done), done);
            }
        }
        panic!("epoch {epoch} never committed: {:?}", self.cp.config(epoch));
    }

    pub async fn initialize(&mut self, members: BTreeSet<BaseboardId>) -> Epoch {
        let rack = RackId(uuid::Uuid::from_u128(0x7e57));
        let epoch = self.cp.initialize(rack, members, now(), &mut self.rng).unwrap();
        self.drive_until_committed(epoch).await;
        epoch
    }

    /// The key `who` derives for `context` from the secret of `epoch`.
    pub async fn key(
        &self,
        who: &BaseboardId,
        epoch: Epoch,
        context: &str,
    ) -> Result<String, (u16, serde_json::Value)> {
        let agent = &self.agents[who];
        let response = self
            .http
            .post(format!("http://{}/v1/key", agent.local_addr()))
            .bearer_auth(agent.token())
            .json(&serde_json::json!({ "epoch": epoch, "context": context }))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap();
        if status == 200 {
            Ok(body["key"].as_str().unwrap().to_owned())
        } else {
            Err((status, body))
        }
    }

    pub fn data_files(&self, who: &BaseboardId) -> [PathBuf; 2] {
        let [a, b] = &self.configs[who].data_dirs;
        [a.join(tq_node::storage::FILE_NAMES[0]), b.join(tq_node::storage::FILE_NAMES[1])]
    }
}

/// A raw HTTPS client presenting `identity`, for the control API at `addr`,
/// and the base URL to use with it.
pub fn raw_client(identity: &Identity, addr: SocketAddr) -> (reqwest::Client, String) {
    let name = tq_node::keys::SLED_DNS_NAME;
    let client = reqwest::Client::builder()
        .use_preconfigured_tls((*identity.client_config()).clone())
        .resolve(name, addr)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    (client, format!("https://{name}:{}", addr.port()))
}
