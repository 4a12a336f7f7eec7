//! The node tests' rack: [`trust_quorum::harness::Rack`] (every call goes
//! through the embedder step: call, durable write, then release) with a
//! hand-rolled control plane that drives reconfigurations and commits
//! directly through the node API.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use tq_types::{
    AuthorityKey, BaseboardId, CommitCertificate, CommitRequest, CommitStatus, CommittedConfig,
    Configuration, CoordinatorStatus, Envelope, Epoch, PeerMsg, PeerMsgKind,
    PrepareAndCommitRequest, RackId, ReconfigureMsg, SignedReconfigure, Threshold,
};
use trust_quorum::crypto::authority::Authority;
use trust_quorum::harness::Rack;
use trust_quorum::node::Reply;
use trust_quorum::{Node, NodeCtx, PersistentState};

pub fn id(i: usize) -> BaseboardId {
    format!("PPP-PPPPPPP:{i:011}").parse().unwrap()
}

pub fn ids(range: impl IntoIterator<Item = usize>) -> BTreeSet<BaseboardId> {
    range.into_iter().map(id).collect()
}

pub fn rack() -> RackId {
    RackId(uuid::Uuid::from_u128(0x0dbe_f452_a6dd_4831_bbdc_769e_a335_3f28))
}

/// The control plane's signing authority every test node trusts
/// (deterministic: the same key in every run).
pub fn authority() -> Arc<Authority> {
    static AUTHORITY: OnceLock<Arc<Authority>> = OnceLock::new();
    AUTHORITY
        .get_or_init(|| Arc::new(Authority::generate(&mut ChaCha20Rng::seed_from_u64(0xA11))))
        .clone()
}

/// The public key of [`authority`], which the nodes are given.
pub fn authority_key() -> AuthorityKey {
    authority().public_key()
}

/// Another authority, which no node trusts (an attacker's key).
pub fn rogue_authority() -> Authority {
    Authority::generate(&mut ChaCha20Rng::seed_from_u64(0xBAD))
}

/// `msg` signed by the trusted authority.
pub fn sign(msg: ReconfigureMsg) -> SignedReconfigure {
    authority().sign_reconfigure(msg).unwrap()
}

/// The trusted authority's certificate that `config` is committed.
pub fn certify(config: &Configuration) -> CommitCertificate {
    authority().certify(config).unwrap()
}

/// `config` with the trusted authority's certificate.
pub fn committed_config(config: &Configuration) -> CommittedConfig {
    CommittedConfig { config: config.clone(), certificate: certify(config) }
}

/// The request for `epoch` on this test rack, coordinated by
/// `coordinator`, with threshold `k`, unsigned.
pub fn reconfigure_msg(
    coordinator: &BaseboardId,
    epoch: u64,
    last: Option<u64>,
    members: &BTreeSet<BaseboardId>,
    k: u8,
) -> ReconfigureMsg {
    ReconfigureMsg {
        rack_id: rack(),
        epoch: Epoch(epoch),
        last_committed_epoch: last.map(Epoch),
        members: members.clone(),
        threshold: Threshold(k),
        coordinator: coordinator.clone(),
    }
}

/// The commit request for a configuration, with its certificate.
pub fn commit_request(config: &Configuration) -> CommitRequest {
    CommitRequest { rack_id: config.rack_id, epoch: config.epoch, certificate: certify(config) }
}

/// The prepare-and-commit request for a configuration, with its
/// certificate.
pub fn prepare_and_commit_request(config: &Configuration) -> PrepareAndCommitRequest {
    PrepareAndCommitRequest { config: config.clone(), certificate: certify(config) }
}

pub struct Cluster {
    pub rack: Rack,
    /// Every configuration any sled has stored, by epoch: sleds keep only
    /// their newest epochs, tests look further back.
    seen: BTreeMap<Epoch, Configuration>,
}

impl Cluster {
    /// `n` sleds, all up and connected, rngs seeded from `seed`.
    pub fn new(n: usize, seed: u64) -> Self {
        Cluster { rack: Rack::new((0..n).map(id), authority_key(), seed), seen: BTreeMap::new() }
    }

    /// The configuration of `epoch` as some sled stored it, even if every
    /// sled has dropped it since.
    pub fn config(&self, epoch: u64) -> &Configuration {
        self.seen.get(&Epoch(epoch)).expect("no sled ever stored this epoch")
    }

    /// Records the configurations the sleds hold now.
    fn record(&mut self) {
        for sled in self.rack.sleds().keys() {
            for (e, c) in self.rack.state(sled).configs() {
                self.seen.entry(*e).or_insert_with(|| c.clone());
            }
        }
    }

    /// What `who` wrote durably.
    pub fn state(&self, who: &BaseboardId) -> &PersistentState {
        self.rack.state(who)
    }

    /// `who`'s running node.
    pub fn node(&self, who: &BaseboardId) -> &Node {
        self.rack.sled(who).and_then(|s| s.live()).expect("sled is up").0
    }

    /// `who`'s running context.
    pub fn ctx(&self, who: &BaseboardId) -> &NodeCtx {
        self.rack.sled(who).and_then(|s| s.live()).expect("sled is up").1
    }

    pub fn is_up(&self, who: &BaseboardId) -> bool {
        self.rack.sled(who).is_some_and(|s| s.is_up())
    }

    /// Everything released so far.
    pub fn sent(&self) -> &[Envelope] {
        self.rack.sent()
    }

    /// The network's queue.
    pub fn net(&mut self) -> &mut Vec<Envelope> {
        self.rack.queue_mut()
    }

    /// One call into `who`'s node through the embedder step.
    pub fn call<T>(
        &mut self,
        who: &BaseboardId,
        f: impl FnOnce(&mut Node, &mut NodeCtx) -> T,
    ) -> T {
        let out = self.rack.call(who, f).expect("call into a crashed sled");
        self.record();
        out
    }

    /// One control-plane request into `who`'s node; the answer once durable.
    pub fn request<T>(
        &mut self,
        who: &BaseboardId,
        f: impl FnOnce(&mut Node, &mut NodeCtx) -> Reply<T>,
    ) -> T {
        let out = self.rack.request(who, f).expect("request to a crashed sled");
        self.record();
        out
    }

    /// The coordinator status `who` answers a poll with.
    pub fn coordinator_status(&mut self, who: &BaseboardId) -> Option<CoordinatorStatus> {
        self.request(who, |n, _| n.coordinator_status())
    }

    pub fn deliver_at(&mut self, index: usize) {
        assert!(self.rack.deliver_at(index), "no envelope at {index}");
        self.record();
    }

    /// Delivers everything in FIFO order until the network is empty.
    pub fn deliver_all(&mut self) {
        self.rack.deliver_all().unwrap();
        self.record();
    }

    /// Delivers the queued envelopes in an order drawn from `rng`.
    pub fn deliver_all_shuffled(&mut self, rng: &mut ChaCha20Rng) {
        self.rack.deliver_all_by(|len| (rng.next_u64() % len as u64) as usize).unwrap();
        self.record();
    }

    pub fn crash(&mut self, who: &BaseboardId) {
        self.rack.crash(who);
    }

    pub fn restart(&mut self, who: &BaseboardId) {
        self.rack.restart(who);
    }

    /// Loses `who`'s durable state (it must be down).
    pub fn wipe(&mut self, who: &BaseboardId) {
        assert!(!self.is_up(who), "wipe a running sled");
        self.rack.wipe(who);
    }

    /// Asks `coordinator` to coordinate a new configuration.
    pub fn reconfigure(
        &mut self,
        coordinator: &BaseboardId,
        epoch: u64,
        last: Option<u64>,
        members: &BTreeSet<BaseboardId>,
    ) {
        let k = (members.len() / 2 + 1) as u8;
        let msg = sign(reconfigure_msg(coordinator, epoch, last, members, k));
        self.request(coordinator, |n, ctx| n.coordinate_reconfiguration(ctx, msg)).unwrap();
    }

    /// The coordinator's acked set for `epoch`, if it is preparing it.
    pub fn acks(&mut self, coordinator: &BaseboardId, epoch: u64) -> BTreeSet<BaseboardId> {
        self.coordinator_status(coordinator)
            .filter(|s| s.config.epoch == Epoch(epoch))
            .map(|s| s.acked_prepares)
            .unwrap_or_default()
    }

    /// Commits `epoch` like the control plane: commit on members that
    /// acked, prepare-and-commit on the others, until every up member
    /// answers committed.
    pub fn commit(&mut self, coordinator: &BaseboardId, epoch: u64) {
        let status = self.coordinator_status(coordinator).unwrap();
        let config = status.config;
        assert_eq!(config.epoch, Epoch(epoch));
        let acked = status.acked_prepares;
        let mut committed = BTreeSet::new();
        for round in 0..50 {
            for m in config.members.keys() {
                if committed.contains(m) || !self.is_up(m) {
                    continue;
                }
                let answer = if acked.contains(m) {
                    let req = commit_request(&config);
                    self.request(m, |n, ctx| n.commit_configuration(ctx, req))
                        .map_err(|e| e.to_string())
                } else {
                    let req = prepare_and_commit_request(&config);
                    self.request(m, |n, ctx| n.prepare_and_commit(ctx, req))
                        .map_err(|e| e.to_string())
                };
                if answer == Ok(CommitStatus::Committed) {
                    committed.insert(m.clone());
                }
            }
            self.deliver_all();
            if config.members.keys().all(|m| committed.contains(m) || !self.is_up(m)) {
                return;
            }
            assert!(round < 49, "commit of epoch {epoch} never completed");
        }
    }

    /// A whole fault-free reconfiguration: request, deliver, commit.
    pub fn reconfigure_and_commit(
        &mut self,
        coordinator: &BaseboardId,
        epoch: u64,
        last: Option<u64>,
        members: &BTreeSet<BaseboardId>,
    ) {
        self.reconfigure(coordinator, epoch, last, members);
        self.deliver_all();
        let up_members = members.iter().filter(|m| self.is_up(m)).count();
        assert_eq!(self.acks(coordinator, epoch).len(), up_members, "not every up member acked");
        self.commit(coordinator, epoch);
    }

    /// Loads the rack secret of `epoch` on `who`, delivering messages until
    /// it is ready.
    pub fn load_secret(&mut self, who: &BaseboardId, epoch: u64) -> trust_quorum::RackSecret {
        for _ in 0..10 {
            let out = self.call(who, |n, ctx| n.load_rack_secret(ctx, Epoch(epoch)));
            match out {
                Ok(Some(secret)) => return secret,
                Ok(None) => self.deliver_all(),
                Err(e) => panic!("load of epoch {epoch} on {who} failed: {e}"),
            }
        }
        panic!("load of epoch {epoch} on {who} never completed");
    }

    pub fn alarms(&self) -> Vec<(BaseboardId, tq_types::Alarm)> {
        self.rack
            .sleds()
            .iter()
            .filter_map(|(k, s)| s.live().map(|(_, ctx)| (k, ctx)))
            .flat_map(|(k, ctx)| ctx.alarms().iter().map(move |a| (k.clone(), a.clone())))
            .collect()
    }
}

// ---- the rejection tests' rack and checks ----

pub fn other_rack() -> RackId {
    RackId(uuid::Uuid::from_u128(0xbad))
}

/// Epoch 1 committed on sleds 0..5 of 6 (sled 5 is a spare).
pub fn epoch1_committed() -> Cluster {
    let mut c = Cluster::new(6, 3);
    c.reconfigure_and_commit(&id(0), 1, None, &ids(0..5));
    c
}

pub fn disk(c: &Cluster, who: usize) -> Vec<u8> {
    c.state(&id(who)).encode().unwrap()
}

/// Runs `f` on sled `who` and checks it changed nothing durable, sent
/// nothing and raised no alarm.
pub fn assert_no_effect<T>(
    c: &mut Cluster,
    who: usize,
    f: impl FnOnce(&mut Node, &mut NodeCtx) -> T,
) -> T {
    let before = disk(c, who);
    let sent = c.sent().len();
    let out = c.call(&id(who), f);
    assert_eq!(disk(c, who), before, "persistent state changed");
    assert_eq!(c.sent().len(), sent, "something was sent: {:?}", &c.sent()[sent..]);
    assert!(c.alarms().is_empty(), "alarms: {:?}", c.alarms());
    out
}

/// [`assert_no_effect`] for a control-plane request: its answer, released.
pub fn assert_no_effect_req<T>(
    c: &mut Cluster,
    who: usize,
    f: impl FnOnce(&mut Node, &mut NodeCtx) -> Reply<T>,
) -> T {
    let before = disk(c, who);
    let sent = c.sent().len();
    let out = c.request(&id(who), f);
    assert_eq!(disk(c, who), before, "persistent state changed");
    assert_eq!(c.sent().len(), sent, "something was sent: {:?}", &c.sent()[sent..]);
    assert!(c.alarms().is_empty(), "alarms: {:?}", c.alarms());
    out
}

pub fn msg(kind: PeerMsgKind) -> PeerMsg {
    PeerMsg { rack_id: rack(), kind }
}

/// A request for sled `coordinator` on this test rack, unsigned.
pub fn request(
    coordinator: usize,
    epoch: u64,
    last: Option<u64>,
    members: BTreeSet<BaseboardId>,
    k: u8,
) -> ReconfigureMsg {
    reconfigure_msg(&id(coordinator), epoch, last, &members, k)
}

/// A request for sled `coordinator`, signed by the authority.
pub fn signed_request(
    coordinator: usize,
    epoch: u64,
    last: Option<u64>,
    members: BTreeSet<BaseboardId>,
    k: u8,
) -> SignedReconfigure {
    sign(request(coordinator, epoch, last, members, k))
}

/// The Prepare envelope for `to` queued by a coordinator of epoch 2.
pub fn pending_prepare(c: &mut Cluster, to: usize) -> Envelope {
    let i = c
        .net()
        .iter()
        .position(|e| e.to == id(to) && matches!(e.msg.kind, PeerMsgKind::Prepare { .. }))
        .expect("a queued prepare");
    c.net().remove(i)
}

/// Starts epoch 2 ({0..5}) at sled 1 and delivers until the prepares are
/// queued (old shares collected), leaving them undelivered.
pub fn epoch2_prepares_queued() -> Cluster {
    let mut c = epoch1_committed();
    c.reconfigure(&id(1), 2, Some(1), &ids(0..6));
    while !c.net().iter().any(|e| matches!(e.msg.kind, PeerMsgKind::Prepare { .. })) {
        c.deliver_at(0);
    }
    c
}
