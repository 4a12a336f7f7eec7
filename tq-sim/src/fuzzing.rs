//! The fuzz targets' logic, on stable Rust.
//!
//! Each function takes the fuzzer's raw bytes and panics exactly when it
//! finds a defect (a panic in the code under test, or a broken oracle).
//! The cargo-fuzz targets in `fuzz/` call these functions, and a stable test
//! replays every committed corpus file through them, so CI catches
//! regressions without a nightly toolchain.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "a fuzz harness over fixed scenario data reports a defect by panicking"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tq_types::membership::{ConfigState, Timestamp};
use tq_types::{
    BaseboardId, CommitRequest, CommitStatus, Configuration, CoordinatorStatus, Envelope, Epoch,
    PeerMsg, PeerMsgKind, PrepareAndCommitRequest, RackId, ReconfigureMsg, Share, ShareDigest,
    Threshold,
};
use trust_quorum::PersistentState;
use trust_quorum::control::{ControlPlane, ControlPlaneConfig, MemberCommitError};
use trust_quorum::harness::{self, Rack, Stepped};

use crate::world::{SimOptions, sled_id};
use crate::{FaultPreset, run};

/// `decode_peer_msg`: arbitrary bytes into the binary decoder never panic,
/// and anything that decodes re-encodes to bytes that decode to an equal
/// value.
pub fn decode_peer_msg(data: &[u8]) {
    if let Ok(msg) = PeerMsg::decode(data) {
        let bytes = msg.encode().expect("a decoded message encodes");
        let again = PeerMsg::decode(&bytes).expect("an encoded message decodes");
        assert_eq!(msg, again, "decode(encode(m)) != m");
    }
}

/// A small rack run once, fault-free, through the embedder loop: the states
/// and messages `node_inputs` draws from.
struct Scenario {
    /// Durable states worth starting from, by sled.
    checkpoints: Vec<(BaseboardId, PersistentState)>,
    /// Every envelope sent during the run.
    sent: Vec<Envelope>,
    /// Every configuration seen.
    configs: Vec<Configuration>,
}

fn scenario() -> &'static Scenario {
    static SCENARIO: OnceLock<Scenario> = OnceLock::new();
    SCENARIO.get_or_init(build_scenario)
}

fn rack() -> RackId {
    RackId(uuid::Uuid::from_u128(0xf022))
}

/// Five sleds commit epoch 1 ({0..4}); epoch 2 removes sled 4 and adds 5.
fn build_scenario() -> Scenario {
    let ids: Vec<BaseboardId> = (0..6).map(sled_id).collect();
    let mut rack_ = Rack::new(ids.iter().cloned(), 0);
    let mut checkpoints = Vec::new();
    let mut configs = Vec::new();
    let members1: BTreeSet<BaseboardId> = ids.iter().take(5).cloned().collect();
    let members2: BTreeSet<BaseboardId> =
        ids.iter().enumerate().filter(|(i, _)| *i != 4).map(|(_, id)| id.clone()).collect();
    for (epoch, last, members, coordinator) in
        [(1, None, &members1, &ids[0]), (2, Some(Epoch(1)), &members2, &ids[1])]
    {
        let msg = ReconfigureMsg {
            rack_id: rack(),
            epoch: Epoch(epoch),
            last_committed_epoch: last,
            members: members.clone(),
            threshold: Threshold(3),
        };
        let accepted = rack_.request(coordinator, |n, c| n.coordinate_reconfiguration(c, msg));
        accepted.expect("up").expect("valid request");
        rack_.deliver_all().expect("drains");
        let status = rack_.sled(coordinator).and_then(|s| s.coordinator_status().cloned());
        let config = status.expect("coordinating").config;
        for m in members {
            let req = CommitRequest { rack_id: rack(), epoch: Epoch(epoch) };
            let _answer = rack_.request(m, |n, c| n.commit_configuration(c, req));
        }
        // Every member loads the secret, so shares flow too.
        for m in members {
            let _pending = rack_.call(m, |n, c| n.load_rack_secret(c, Epoch(epoch)));
        }
        rack_.deliver_all().expect("drains");
        for (id, sled) in rack_.sleds() {
            checkpoints.push((id.clone(), sled.disk().clone()));
        }
        configs.push(config);
    }
    Scenario { checkpoints, sent: rack_.sent().to_vec(), configs }
}

/// One input to the node under test.
#[derive(Debug, Arbitrary)]
enum NodeInput {
    /// Deliver a message the scenario sent, from its real sender.
    Replay {
        index: u16,
    },
    /// Deliver a message the scenario sent, altered.
    Mutated {
        index: u16,
        mutation: Mutation,
    },
    /// Deliver a message with arbitrary bytes as its encoding.
    Raw {
        from: u8,
        bytes: Vec<u8>,
    },
    Connect {
        peer: u8,
    },
    Disconnect {
        peer: u8,
    },
    Reconfigure {
        epoch: u8,
        last: Option<u8>,
        members: u8,
        threshold: u8,
    },
    Commit {
        epoch: u8,
        other_rack: bool,
    },
    PrepareAndCommit {
        config: u8,
        mutation: Option<Mutation>,
    },
    LoadSecret {
        epoch: u8,
    },
    ClearSecrets,
    Restart,
}

/// How a message or configuration is altered.
#[derive(Debug, Arbitrary)]
enum Mutation {
    Epoch(u8),
    RackId,
    Sender(u8),
    ShareByte { index: u8, xor: u8 },
    TruncateShare(u8),
    Digest(u8),
    Threshold(u8),
    DropMember(u8),
}

fn mutate_config(config: &mut Configuration, m: &Mutation) {
    match m {
        Mutation::Epoch(e) => config.epoch = Epoch(u64::from(*e)),
        Mutation::RackId => config.rack_id = RackId(uuid::Uuid::from_u128(7)),
        Mutation::Digest(i) => {
            let n = config.members.len().max(1);
            if let Some(d) = config.members.values_mut().nth(usize::from(*i) % n) {
                d.0[0] ^= 1;
            }
        }
        Mutation::Threshold(t) => config.threshold = Threshold(*t),
        Mutation::DropMember(i) => {
            let n = config.members.len().max(1);
            if let Some(k) = config.members.keys().nth(usize::from(*i) % n).cloned() {
                config.members.remove(&k);
            }
        }
        Mutation::Sender(_) | Mutation::ShareByte { .. } | Mutation::TruncateShare(_) => {}
    }
}

fn mutate_share(share: &Share, m: &Mutation) -> Share {
    let mut bytes = share.as_bytes().to_vec();
    match m {
        Mutation::ShareByte { index, xor } => {
            let n = bytes.len().max(1);
            if let Some(b) = bytes.get_mut(usize::from(*index) % n) {
                *b ^= xor | 1;
            }
        }
        Mutation::TruncateShare(len) => bytes.truncate(usize::from(*len) % 40),
        _ => {}
    }
    Share::new(bytes)
}

fn mutate(e: &Envelope, m: &Mutation) -> (BaseboardId, PeerMsg) {
    let mut from = e.from.clone();
    let mut msg = e.msg.clone();
    match m {
        Mutation::Sender(i) => from = sled_id(usize::from(*i % 8)),
        Mutation::RackId => msg.rack_id = RackId(uuid::Uuid::from_u128(7)),
        _ => {}
    }
    msg.kind = match msg.kind {
        PeerMsgKind::Prepare { mut config, share } => {
            mutate_config(&mut config, m);
            PeerMsgKind::Prepare { config, share: mutate_share(&share, m) }
        }
        PeerMsgKind::Share { epoch, share } => {
            let epoch = if let Mutation::Epoch(x) = m { Epoch(u64::from(*x)) } else { epoch };
            PeerMsgKind::Share { epoch, share: mutate_share(&share, m) }
        }
        PeerMsgKind::CommitAdvance(mut config) => {
            mutate_config(&mut config, m);
            PeerMsgKind::CommitAdvance(config)
        }
        PeerMsgKind::PrepareAck(e) | PeerMsgKind::GetShare(e) | PeerMsgKind::Expunged(e) => {
            let e = if let Mutation::Epoch(x) = m { Epoch(u64::from(*x)) } else { e };
            match msg.kind {
                PeerMsgKind::PrepareAck(_) => PeerMsgKind::PrepareAck(e),
                PeerMsgKind::GetShare(_) => PeerMsgKind::GetShare(e),
                _ => PeerMsgKind::Expunged(e),
            }
        }
    };
    (from, msg)
}

/// docs/protocol.md's rules for how a node's durable state may change: configs
/// and shares never replaced or removed, commits only added and only of
/// prepared epochs, `expunged` cleared only by a later configuration that
/// lists `me` (a re-add) and never changed otherwise.
fn check_transition(me: &BaseboardId, before: &PersistentState, after: &PersistentState) {
    for (e, c) in before.configs() {
        assert_eq!(after.config(*e), Some(c), "stored config {e} replaced or removed");
    }
    for e in before.share_epochs() {
        assert!(after.share(e) == before.share(e), "stored share {e} replaced or removed");
    }
    assert!(before.commits().is_subset(after.commits()), "a commit was removed");
    for e in after.commits() {
        assert!(after.is_prepared(*e), "committed {e} without config and share");
    }
    if let Some(ex) = before.expunged().filter(|_| after.expunged() != before.expunged()) {
        assert!(after.expunged().is_none(), "expunged changed");
        let readmitted = after.configs().iter().any(|(e, c)| *e > ex.epoch && c.is_member(me));
        assert!(readmitted, "expunged cleared without a later configuration listing the node");
    }
}

/// `node_inputs`: an arbitrary sequence of method calls and peer messages
/// (real, altered and garbage) on a node that starts blank or from a real
/// checkpoint: no panic, and the durable state changes only as allowed.
pub fn node_inputs(data: &[u8]) {
    let s = scenario();
    let mut u = Unstructured::new(data);
    let start = u.choose_index(s.checkpoints.len().saturating_add(1)).unwrap_or(0);
    let (me, state) = match s.checkpoints.get(start) {
        Some((id, state)) => (id.clone(), state.clone()),
        None => (sled_id(0), PersistentState::new()),
    };
    let seed = u.arbitrary::<u64>().unwrap_or(0);
    let mut sled = harness::Sled::with_disk(me.clone(), state);
    sled.start(ChaCha20Rng::seed_from_u64(seed));
    let mut steps = 0;
    while let Ok(input) = u.arbitrary::<NodeInput>() {
        steps += 1;
        if steps > 64 {
            break;
        }
        let before = sled.disk().clone();
        let sent = apply_node_input(s, &mut sled, input, seed);
        check_transition(&me, &before, sled.disk());
        for e in sent {
            assert_eq!(e.from, me, "envelope from another sender");
            if sled.disk().expunged().is_some() && before.expunged().is_some() {
                panic!("an expunged node sent {}", e.msg.kind.name());
            }
        }
    }
}

/// Applies one input through the embedder step; returns what it released.
fn apply_node_input(
    s: &Scenario,
    sled: &mut harness::Sled,
    input: NodeInput,
    seed: u64,
) -> Vec<Envelope> {
    let n_sent = s.sent.len().max(1);
    match input {
        NodeInput::Replay { index } => match s.sent.get(usize::from(index) % n_sent) {
            Some(e) => {
                released(sled.call(|node, ctx| node.handle(ctx, e.from.clone(), e.msg.clone())))
            }
            None => Vec::new(),
        },
        NodeInput::Mutated { index, mutation } => match s.sent.get(usize::from(index) % n_sent) {
            Some(e) => {
                let (from, msg) = mutate(e, &mutation);
                released(sled.call(|node, ctx| node.handle(ctx, from, msg)))
            }
            None => Vec::new(),
        },
        NodeInput::Raw { from, bytes } => match PeerMsg::decode(&bytes) {
            Ok(msg) => released(
                sled.call(|node, ctx| node.handle(ctx, sled_id(usize::from(from % 8)), msg)),
            ),
            Err(_) => Vec::new(),
        },
        NodeInput::Connect { peer } => {
            released(sled.call(|node, ctx| node.on_connect(ctx, sled_id(usize::from(peer % 8)))))
        }
        NodeInput::Disconnect { peer } => released(
            sled.call(|node, ctx| node.on_disconnect(ctx, &sled_id(usize::from(peer % 8)))),
        ),
        NodeInput::Reconfigure { epoch, last, members, threshold } => {
            let members: BTreeSet<BaseboardId> =
                (0..8).filter(|i| members & (1 << i) != 0).map(sled_id).collect();
            let msg = ReconfigureMsg {
                rack_id: rack(),
                epoch: Epoch(u64::from(epoch)),
                last_committed_epoch: last.map(|l| Epoch(u64::from(l))),
                members,
                threshold: Threshold(threshold),
            };
            released(sled.request(|node, ctx| node.coordinate_reconfiguration(ctx, msg)))
        }
        NodeInput::Commit { epoch, other_rack } => {
            let rack_id = if other_rack { RackId(uuid::Uuid::from_u128(7)) } else { rack() };
            let req = CommitRequest { rack_id, epoch: Epoch(u64::from(epoch)) };
            let stepped = sled.request(|node, ctx| node.commit_configuration(ctx, req));
            if stepped.as_ref().is_some_and(|st| st.value == Ok(CommitStatus::Committed)) {
                assert!(sled.disk().commits().contains(&Epoch(u64::from(epoch))));
            }
            released(stepped)
        }
        NodeInput::PrepareAndCommit { config, mutation } => {
            let n = s.configs.len().max(1);
            match s.configs.get(usize::from(config) % n) {
                Some(c) => {
                    let mut c = c.clone();
                    if let Some(m) = &mutation {
                        mutate_config(&mut c, m);
                    }
                    let epoch = c.epoch;
                    let req = PrepareAndCommitRequest { config: c };
                    let stepped = sled.request(|node, ctx| node.prepare_and_commit(ctx, req));
                    if stepped.as_ref().is_some_and(|st| st.value == Ok(CommitStatus::Committed)) {
                        assert!(sled.disk().commits().contains(&epoch));
                    }
                    released(stepped)
                }
                None => Vec::new(),
            }
        }
        NodeInput::LoadSecret { epoch } => {
            released(sled.call(|node, ctx| node.load_rack_secret(ctx, Epoch(u64::from(epoch)))))
        }
        NodeInput::ClearSecrets => released(sled.call(|node, _| node.clear_secrets())),
        NodeInput::Restart => {
            sled.crash();
            sled.start(ChaCha20Rng::seed_from_u64(seed.wrapping_add(1)));
            Vec::new()
        }
    }
}

/// The envelopes a step released (none if the sled was down).
fn released<T>(stepped: Option<Stepped<T>>) -> Vec<Envelope> {
    stepped.map(|st| st.envelopes).unwrap_or_default()
}

/// One operator operation or driver result on the control plane.
#[derive(Debug, Arbitrary)]
enum ControlInput {
    Initialize { members: u16 },
    Add { sleds: u16 },
    Remove { sleds: u16 },
    Abort,
    Tick,
    Advance { secs: u16 },
    Status { epoch: u8, from: u8, acked: u16, digest_seed: u8, coordinating: bool, sealed: bool },
    CommitResult { epoch: u8, member: u8, committed: bool, not_prepared: bool },
    Activated { sled: u8 },
    Unreachable { sled: u8 },
}

fn sleds_of(mask: u16) -> BTreeSet<BaseboardId> {
    (0..10).filter(|i| mask & (1 << i) != 0).map(sled_id).collect()
}

/// `control_plane_ops`: arbitrary operator operations and driver results
/// (stale, duplicated, fabricated) on a `ControlPlane`: no panic; after every
/// step the ledger validates, states only move forward, terminal states never
/// change, and a rejected operation leaves the ledger untouched.
pub fn control_plane_ops(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut cp = ControlPlane::new(ControlPlaneConfig::default());
    let mut rng = ChaCha20Rng::seed_from_u64(u.arbitrary::<u64>().unwrap_or(0));
    let mut now_us: i64 = 1_768_426_338_000_000;
    let mut states: BTreeMap<Epoch, ConfigState> = BTreeMap::new();
    let mut steps = 0;
    while let Ok(input) = u.arbitrary::<ControlInput>() {
        steps += 1;
        if steps > 128 {
            break;
        }
        let now = Timestamp::from_unix_micros(now_us).expect("valid time");
        let before = cp.ledger().clone();
        let rejected = match input {
            ControlInput::Initialize { members } => {
                cp.initialize(rack(), sleds_of(members), now, &mut rng).is_err()
            }
            ControlInput::Add { sleds } => cp.add_sleds(sleds_of(sleds), now, &mut rng).is_err(),
            ControlInput::Remove { sleds } => {
                cp.remove_sleds(sleds_of(sleds), now, &mut rng).is_err()
            }
            ControlInput::Abort => cp.abort_latest("fuzz", now).is_err(),
            ControlInput::Tick => {
                let _ = cp.tick(now, &mut rng);
                false
            }
            ControlInput::Advance { secs } => {
                now_us = now_us.saturating_add(i64::from(secs).saturating_mul(1_000_000));
                false
            }
            ControlInput::Status { epoch, from, acked, digest_seed, coordinating, sealed } => {
                let epoch = Epoch(u64::from(epoch));
                let from = sled_id(usize::from(from % 10));
                let status = coordinating
                    .then(|| fabricated_status(&cp, epoch, &from, acked, digest_seed, sealed));
                cp.on_coordinator_status(epoch, &from, status, now).is_err()
            }
            ControlInput::CommitResult { epoch, member, committed, not_prepared } => {
                let result = if not_prepared {
                    Err(MemberCommitError::Commit(tq_types::CommitError::NotPrepared(Epoch(
                        u64::from(epoch),
                    ))))
                } else if committed {
                    Ok(CommitStatus::Committed)
                } else {
                    Ok(CommitStatus::Pending)
                };
                cp.on_commit_result(
                    Epoch(u64::from(epoch)),
                    &sled_id(usize::from(member % 10)),
                    result,
                    now,
                )
                .is_err()
            }
            ControlInput::Activated { sled } => {
                cp.on_activated(&sled_id(usize::from(sled % 10)), now).is_err()
            }
            ControlInput::Unreachable { sled } => {
                cp.on_unreachable(&sled_id(usize::from(sled % 10)), now);
                false
            }
        };
        let ledger = cp.ledger();
        if let Err(e) = ledger.validate() {
            panic!("ledger invalid: {e}");
        }
        if rejected {
            assert_eq!(&before, ledger, "a rejected operation changed the ledger");
        }
        if ledger != &before {
            assert!(ledger.generation() > before.generation(), "changed without a new generation");
        }
        for e in cp.epochs().collect::<Vec<_>>() {
            let Some(state) = cp.config(e).map(|v| v.state) else { continue };
            if let Some(prev) = states.insert(e, state) {
                let ok = prev == state
                    || matches!(
                        (prev, state),
                        (ConfigState::Preparing, ConfigState::Committing | ConfigState::Aborted)
                            | (
                                ConfigState::Committing,
                                ConfigState::Committed | ConfigState::CommittedPartially
                            )
                    );
                assert!(ok, "epoch {e} went {prev} -> {state}");
            }
        }
    }
}

/// A coordinator status for `epoch`, built from the ledger's view where it
/// exists (so that it is often accepted), with made-up digests.
fn fabricated_status(
    cp: &ControlPlane,
    epoch: Epoch,
    from: &BaseboardId,
    acked: u16,
    digest_seed: u8,
    sealed: bool,
) -> CoordinatorStatus {
    let view = cp.config(epoch);
    let members: BTreeMap<BaseboardId, ShareDigest> = match &view {
        Some(v) => v
            .members
            .iter()
            .map(|(m, d)| {
                let digest = d.share_digest.unwrap_or_else(|| {
                    ShareDigest(
                        *blake3::hash(&[digest_seed, m.serial_number().len() as u8]).as_bytes(),
                    )
                });
                (m.clone(), digest)
            })
            .collect(),
        None => BTreeMap::new(),
    };
    let acked_prepares = members
        .keys()
        .enumerate()
        .filter(|(i, _)| acked & (1 << (i % 16)) != 0)
        .map(|(_, m)| m.clone())
        .collect();
    let config = Configuration {
        rack_id: view.as_ref().map_or(rack(), |v| v.rack_id),
        epoch,
        coordinator: view.as_ref().map_or_else(|| from.clone(), |v| v.coordinator.clone()),
        threshold: view.as_ref().map_or(Threshold(2), |v| v.threshold),
        encrypted_rack_secrets: sealed.then(|| tq_types::EncryptedRackSecrets {
            salt: tq_types::Salt([digest_seed; 32]),
            data: vec![digest_seed; 56],
        }),
        members,
    };
    CoordinatorStatus { config, acked_prepares }
}

/// The options `sim_seed` derives from its input.
#[derive(Debug, Arbitrary)]
struct SimInput {
    seed: u64,
    steps: u16,
    nodes: u8,
    preset: u8,
    replicas: u8,
}

/// `sim_seed`: an arbitrary seed and options into one short simulator run:
/// no violation, and liveness holds.
pub fn sim_seed(data: &[u8]) {
    let Ok(input) = Unstructured::new(data).arbitrary::<SimInput>() else { return };
    let faults = match input.preset % 4 {
        0 => FaultPreset::None,
        1 => FaultPreset::Light,
        2 => FaultPreset::Swarm,
        _ => FaultPreset::Heavy,
    };
    let options = SimOptions {
        seed: input.seed,
        steps: u64::from(input.steps % 600),
        nodes: usize::from(3 + input.nodes % 8),
        faults,
        replicas: usize::from(1 + input.replicas % 3),
        planted_bug: None,
    };
    let outcome = run(&options, false);
    if let Some(f) = &outcome.failure {
        panic!(
            "{options:?}: invariant {} violated at event {}: {}",
            f.violation.invariant, f.step, f.violation.detail
        );
    }
    if let Err(e) = &outcome.liveness {
        panic!("{options:?}: liveness failed: {e}");
    }
}
