//! Helpers shared by the control-plane tests: ids, times, a seeded rng, and
//! fabricated coordinator statuses (no real node involved).
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]
#![allow(clippy::arithmetic_side_effects, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tq_types::{
    BaseboardId, CommitStatus, ConfigState, Configuration, CoordinatorStatus, EncryptedRackSecrets,
    Epoch, RackId, ReconfigureMsg, Salt, ShareDigest, Timestamp,
};
use trust_quorum::control::{ControlAction, ControlPlane, ControlPlaneConfig};
use trust_quorum::crypto::authority::Authority;
use trust_quorum::harness::Controller;

pub const RACK: &str = "0dbef452-a6dd-4831-bbdc-769ea3353f28";

pub fn rack() -> RackId {
    RackId(RACK.parse().unwrap())
}

/// `PPP-PPPPPPP:<11-digit n>`, the fixtures' spelling.
pub fn id(n: u32) -> BaseboardId {
    BaseboardId::new("PPP-PPPPPPP", format!("{n:011}")).unwrap()
}

pub fn ids(ns: impl IntoIterator<Item = u32>) -> BTreeSet<BaseboardId> {
    ns.into_iter().map(id).collect()
}

/// The fixtures' epoch-2 creation time plus `secs` seconds.
pub fn t(secs: i64) -> Timestamp {
    Timestamp::from_unix_micros(1_768_426_338_780_136 + secs * 1_000_000).unwrap()
}

pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// The control plane's signing authority in these tests (deterministic:
/// the same key in every run; replicas share it).
pub fn authority() -> Arc<Authority> {
    static AUTHORITY: OnceLock<Arc<Authority>> = OnceLock::new();
    AUTHORITY
        .get_or_init(|| Arc::new(Authority::generate(&mut ChaCha20Rng::seed_from_u64(0xA11))))
        .clone()
}

/// The request the control plane signs for `epoch`.
pub fn reconfigure_msg(cp: &ControlPlane, epoch: Epoch) -> ReconfigureMsg {
    let view = cp.config(epoch).expect("epoch exists");
    ReconfigureMsg {
        rack_id: view.rack_id,
        epoch,
        last_committed_epoch: view.last_committed_epoch,
        members: view.members.keys().cloned().collect(),
        threshold: view.threshold,
        coordinator: view.coordinator.clone(),
    }
}

/// A made-up digest, stable per (epoch, member).
pub fn digest(epoch: Epoch, member: &BaseboardId) -> ShareDigest {
    let mut d = [0u8; 32];
    let h = blake3::hash(format!("{epoch}/{member}").as_bytes());
    d.copy_from_slice(h.as_bytes());
    ShareDigest(d)
}

/// Made-up sealed secrets, stable per epoch.
pub fn sealed(epoch: Epoch) -> EncryptedRackSecrets {
    EncryptedRackSecrets { salt: Salt([epoch.0 as u8; 32]), data: vec![0xab; 56] }
}

/// The configuration a well-behaved coordinator of `epoch` would report.
pub fn fake_config(cp: &ControlPlane, epoch: Epoch) -> Configuration {
    let view = cp.config(epoch).expect("epoch exists");
    Configuration {
        rack_id: view.rack_id,
        epoch,
        coordinator: view.coordinator.clone(),
        members: view.members.keys().map(|m| (m.clone(), digest(epoch, m))).collect(),
        threshold: view.threshold,
        encrypted_rack_secrets: view.last_committed_epoch.map(|_| sealed(epoch)),
        reconfigure: Box::new(cp.authority().sign_reconfigure(reconfigure_msg(cp, epoch)).unwrap()),
    }
}

pub fn fake_status(
    cp: &ControlPlane,
    epoch: Epoch,
    acked: &BTreeSet<BaseboardId>,
) -> CoordinatorStatus {
    CoordinatorStatus { config: fake_config(cp, epoch), acked_prepares: acked.clone() }
}

pub fn coordinator(cp: &ControlPlane, epoch: Epoch) -> BaseboardId {
    cp.config(epoch).unwrap().coordinator
}

pub fn ledger_json(cp: &ControlPlane) -> String {
    serde_json::to_string(cp.ledger()).unwrap()
}

pub fn state(cp: &ControlPlane, epoch: Epoch) -> ConfigState {
    cp.config(epoch).unwrap().state
}

pub fn default_cp() -> Controller {
    Controller::new(ControlPlaneConfig::default(), authority())
}

/// Drives the latest (preparing) configuration to committing: sends the
/// reconfiguration request, answers it, and reports all of `acked` prepared.
pub fn prepare(
    cp: &mut Controller,
    acked: &BTreeSet<BaseboardId>,
    now: Timestamp,
    r: &mut ChaCha20Rng,
) -> Epoch {
    let epoch = cp.latest_epoch().unwrap();
    let actions = cp.tick(now, r);
    let coord = coordinator(cp, epoch);
    if actions.iter().any(|a| matches!(a, ControlAction::Reconfigure { .. })) {
        cp.on_reconfigure_result(epoch, &coord, Ok(()), now).unwrap();
    }
    let status = fake_status(cp, epoch, acked);
    cp.on_coordinator_status(epoch, &coord, Some(status), now).unwrap();
    epoch
}

/// Commits every member the next pass targets, answering `Committed`
/// unless `skip` holds the member. Returns the pass's actions.
pub fn commit_pass(
    cp: &mut Controller,
    skip: &BTreeSet<BaseboardId>,
    now: Timestamp,
    r: &mut ChaCha20Rng,
) -> Vec<ControlAction> {
    let epoch = cp.latest_epoch().unwrap();
    let actions = cp.tick(now, r);
    for a in &actions {
        let member = match a {
            ControlAction::Commit { member, .. }
            | ControlAction::PrepareAndCommit { member, .. } => member,
            _ => continue,
        };
        if !skip.contains(member) {
            cp.on_commit_result(epoch, member, Ok(CommitStatus::Committed), now).unwrap();
        }
    }
    actions
}

/// A rack whose epoch 1 with `members` is committed.
pub fn committed_rack(members: &BTreeSet<BaseboardId>, r: &mut ChaCha20Rng) -> Controller {
    committed_rack_with(ControlPlaneConfig::default(), members, r)
}

pub fn committed_rack_with(
    config: ControlPlaneConfig,
    members: &BTreeSet<BaseboardId>,
    r: &mut ChaCha20Rng,
) -> Controller {
    let mut cp = Controller::new(config, authority());
    let epoch = cp.initialize(rack(), members.clone(), t(-100), r).unwrap();
    prepare(&mut cp, members, t(-99), r);
    commit_pass(&mut cp, &BTreeSet::new(), t(-98), r);
    assert_eq!(state(&cp, epoch), ConfigState::Committed);
    cp
}

/// Fully drives the latest preparing configuration to committed.
pub fn drive_to_committed(cp: &mut Controller, now: Timestamp, r: &mut ChaCha20Rng) -> Epoch {
    let epoch = cp.latest_epoch().unwrap();
    let members: BTreeSet<BaseboardId> =
        cp.config(epoch).unwrap().members.keys().cloned().collect();
    prepare(cp, &members, now, r);
    commit_pass(cp, &BTreeSet::new(), now, r);
    assert_eq!(state(cp, epoch), ConfigState::Committed);
    epoch
}

/// Replaces every leaf of a JSON value by its type name, keeping keys and
/// nesting: two documents "have the same shape" when these are equal.
pub fn shape(v: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Null => Value::String("null".into()),
        Value::Bool(_) => Value::String("bool".into()),
        Value::Number(_) => Value::String("number".into()),
        Value::String(_) => Value::String("string".into()),
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
    }
}

pub fn fixture(name: &str) -> String {
    let path = format!("{}/../fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn members_by_state(
    cp: &ControlPlane,
    epoch: Epoch,
) -> BTreeMap<BaseboardId, tq_types::MemberState> {
    cp.config(epoch).unwrap().members.into_iter().map(|(m, d)| (m, d.state)).collect()
}
