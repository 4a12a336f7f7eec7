//! Test helpers: a real rack that committed two epochs (its durable states,
//! ground truth and secrets), and ways to feed the checker crafted
//! transitions built from them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use tq_types::{
    BaseboardId, Configuration, Envelope, Epoch, NodeStatus, PeerMsg, PeerMsgKind, Share,
};
use trust_quorum::node::PersistentStateParts;
use trust_quorum::{PersistentState, RackSecret, crypto};

use super::Checker;
use super::loads::Answer;
use crate::control::Decisions;
use crate::event::Event;
use crate::faults::FaultPreset;
use crate::observation::Observation;
use crate::options::SimOptions;
use crate::world::{GroundTruth, World, sled_id};

/// A fault-free 5-sled rack after epoch 1 (sleds 0, 1, 2; K = 2) and
/// epoch 2 (sleds 0 to 3; K = 3) committed. Sled 4 never joined.
pub(super) struct Fixture {
    /// Every sled's durable state.
    pub(super) disks: BTreeMap<BaseboardId, PersistentState>,
    /// Every sled's durable state once epoch 1 committed: sleds keep only
    /// their newest epochs, so epoch 1's configuration and shares are read
    /// from here.
    pub(super) epoch1_disks: BTreeMap<BaseboardId, PersistentState>,
    /// The world's ground truth.
    pub(super) truth: GroundTruth,
    /// Each epoch's secret, rebuilt with the product's crypto from K
    /// members' durable shares.
    pub(super) secrets: BTreeMap<Epoch, RackSecret>,
    /// What the control plane signed and certified.
    pub(super) decisions: Decisions,
}

/// The shared fixture, built once.
pub(super) fn fx() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(build)
}

fn build() -> Fixture {
    let options = SimOptions { nodes: 5, faults: FaultPreset::None, ..SimOptions::new(11) };
    let mut world = World::new(options);
    let take = |w: &mut World| {
        let _ = w.take_observations();
    };
    take(&mut world);
    world.apply(&Event::BeginLiveness);
    take(&mut world);
    crate::liveness::settle(&mut world, 20_000).unwrap();
    let snapshot = |w: &World| -> BTreeMap<BaseboardId, PersistentState> {
        w.rack.sleds.iter().map(|(id, s)| (id.clone(), s.disk().clone())).collect()
    };
    let epoch1_disks = snapshot(&world);
    world.apply(&Event::AddSleds { replica: 0, sleds: vec![sled_id(3)] });
    take(&mut world);
    crate::liveness::settle(&mut world, 20_000).unwrap();
    let disks = snapshot(&world);
    for i in 0..=3 {
        assert_eq!(disks[&sled_id(i)].latest_committed_epoch(), Some(Epoch(2)), "sled {i}");
    }
    let mut secrets = BTreeMap::new();
    for (e, at) in [(Epoch(1), &epoch1_disks), (Epoch(2), &disks)] {
        let config = at[&sled_id(0)].config(e).unwrap();
        let k = usize::from(config.threshold.0);
        let shares: Vec<Share> =
            config.members.keys().take(k).map(|m| at[m].share(e).unwrap().clone()).collect();
        secrets.insert(e, crypto::combine(&shares).unwrap());
    }
    Fixture {
        disks,
        epoch1_disks,
        truth: world.truth().clone(),
        secrets,
        decisions: world.control.decisions().clone(),
    }
}

impl Fixture {
    /// Sled `i`'s durable state.
    pub(super) fn disk(&self, i: usize) -> &PersistentState {
        &self.disks[&sled_id(i)]
    }

    /// The configuration of `epoch` (1 or 2).
    pub(super) fn config(&self, epoch: u64) -> &Configuration {
        self.at(epoch)[&sled_id(0)].config(Epoch(epoch)).unwrap()
    }

    /// Sled `i`'s share of `epoch` (1 or 2).
    pub(super) fn share(&self, i: usize, epoch: u64) -> Share {
        self.at(epoch)[&sled_id(i)].share(Epoch(epoch)).unwrap().clone()
    }

    /// The disks as they were when `epoch` was the newest committed one.
    fn at(&self, epoch: u64) -> &BTreeMap<BaseboardId, PersistentState> {
        if epoch == 1 { &self.epoch1_disks } else { &self.disks }
    }

    /// The secret of `epoch`.
    pub(super) fn secret(&self, epoch: u64) -> RackSecret {
        self.secrets[&Epoch(epoch)].clone()
    }
}

/// `disk` changed by `f`, unchecked: states the library would never write.
pub(super) fn edit(
    disk: &PersistentState,
    f: impl FnOnce(&mut PersistentStateParts),
) -> PersistentState {
    let mut parts = disk.to_parts();
    f(&mut parts);
    PersistentState::from_parts_unchecked(parts)
}

/// Feeds `who` durably writing `new` over `old`.
pub(super) fn persist(c: &mut Checker, who: usize, old: &PersistentState, new: PersistentState) {
    c.observe(Observation::Persisted { who: sled_id(who), old: old.clone(), new: Arc::new(new) });
}

/// Feeds `from` (durable state `disk`) releasing `kind` to `to`.
pub(super) fn send(
    c: &mut Checker,
    from: usize,
    to: usize,
    kind: PeerMsgKind,
    disk: PersistentState,
) {
    let rack_id = fx().config(1).rack_id;
    let envelope =
        Envelope { from: sled_id(from), to: sled_id(to), msg: PeerMsg { rack_id, kind } };
    c.observe(Observation::Sent { envelope, sender_disk: Arc::new(disk) });
}

/// Feeds sled `who` (durable state `disk`, not alarmed) answering a load of
/// `epoch` with `result`, judged against the fixture's ground truth.
pub(super) fn load(
    c: &mut Checker,
    who: usize,
    epoch: u64,
    result: Answer,
    disk: &PersistentState,
) {
    load_with(c, who, epoch, result, disk, false, &fx().truth);
}

/// [`load`] with every input given.
pub(super) fn load_with(
    c: &mut Checker,
    who: usize,
    epoch: u64,
    result: Answer,
    disk: &PersistentState,
    alarmed: bool,
    truth: &GroundTruth,
) {
    c.on_load(&sled_id(who), Epoch(epoch), &result, disk, alarmed, truth);
}

/// Sled `i`'s status with nothing going on.
pub(super) fn idle_status(i: usize) -> NodeStatus {
    NodeStatus {
        id: sled_id(i),
        rack_id: None,
        latest_config: None,
        latest_committed: None,
        expunged: None,
        coordinating: None,
        computing_share: None,
        connected: BTreeSet::new(),
        alarms: Vec::new(),
    }
}

/// The names of the violations `c` found, each once.
pub(super) fn names(c: &Checker) -> BTreeSet<String> {
    c.violations().iter().map(|v| v.invariant.clone()).collect()
}
