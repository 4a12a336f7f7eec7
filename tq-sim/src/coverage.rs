//! What a run exercised: counts of the things the faults are for, derived
//! deterministically from the events applied, the world's state around each
//! of them and the checker's tally of load answers. `explore` sums them over
//! its seeds, and a test holds them to floors, so that a change that quietly
//! stops a fault from happening is noticed.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use tq_types::membership::ConfigState;
use tq_types::{BaseboardId, ExpungedMetadata, PeerMsgKind};

use crate::adversary::Injections;
use crate::event::Event;
use crate::simulation::Simulation;
use crate::world::World;

/// Counts of what runs exercised.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug, Serialize)]
pub struct Coverage {
    /// Disks lost: `wipe_disk` events applied to a crashed sled.
    pub wipes: u64,
    /// Configurations that ended aborted.
    pub aborts: u64,
    /// Times a sled durably learned it was expunged (its marker set or
    /// changed).
    pub expunges: u64,
    /// `corrupt_share` events that found a share queued on their link.
    pub corrupted_shares: u64,
    /// Compare-and-set races a control-plane replica lost.
    pub races_lost: u64,
    /// Runs whose ledger committed an epoch of 3 or more.
    pub epoch3_runs: u64,
    /// Secret loads answered `NotAvailable`.
    pub not_available: u64,
    /// Messages the compromised sled of a byzantine run got onto a link,
    /// by kind.
    pub byzantine: Injections,
    /// Stored states damaged by the disk-corruption fault.
    pub corrupted_disks: u64,
    /// Damaged states whose decoding was refused (the sled then counted as
    /// having lost its disk).
    pub corruptions_detected: u64,
}

impl Coverage {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Coverage) {
        self.wipes = self.wipes.saturating_add(other.wipes);
        self.aborts = self.aborts.saturating_add(other.aborts);
        self.expunges = self.expunges.saturating_add(other.expunges);
        self.corrupted_shares = self.corrupted_shares.saturating_add(other.corrupted_shares);
        self.races_lost = self.races_lost.saturating_add(other.races_lost);
        self.epoch3_runs = self.epoch3_runs.saturating_add(other.epoch3_runs);
        self.not_available = self.not_available.saturating_add(other.not_available);
        let (b, o) = (&mut self.byzantine, &other.byzantine);
        b.replays = b.replays.saturating_add(o.replays);
        b.forged_prepares = b.forged_prepares.saturating_add(o.forged_prepares);
        b.forged_commit_advances =
            b.forged_commit_advances.saturating_add(o.forged_commit_advances);
        b.forged_expunged = b.forged_expunged.saturating_add(o.forged_expunged);
        b.get_shares = b.get_shares.saturating_add(o.get_shares);
        b.mutated_shares = b.mutated_shares.saturating_add(o.mutated_shares);
        b.flooded = b.flooded.saturating_add(o.flooded);
        self.corrupted_disks = self.corrupted_disks.saturating_add(other.corrupted_disks);
        self.corruptions_detected =
            self.corruptions_detected.saturating_add(other.corruptions_detected);
    }
}

impl fmt::Display for Coverage {
    /// `wipes=… aborts=… expunges=… corrupted_shares=… races_lost=…
    /// epoch3_runs=… not_available=…`, then the byzantine injections
    /// `replays=… forged_prepares=… forged_commit_advances=…
    /// forged_expunged=… get_shares=… mutated_shares=… flooded=…` and
    /// `corrupted_disks=… corruptions_detected=…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "wipes={} aborts={} expunges={} corrupted_shares={} races_lost={} epoch3_runs={} \
             not_available={}",
            self.wipes,
            self.aborts,
            self.expunges,
            self.corrupted_shares,
            self.races_lost,
            self.epoch3_runs,
            self.not_available
        )?;
        let b = &self.byzantine;
        write!(
            f,
            " replays={} forged_prepares={} forged_commit_advances={} forged_expunged={} \
             get_shares={} mutated_shares={} flooded={} corrupted_disks={} corruptions_detected={}",
            b.replays,
            b.forged_prepares,
            b.forged_commit_advances,
            b.forged_expunged,
            b.get_shares,
            b.mutated_shares,
            b.flooded,
            self.corrupted_disks,
            self.corruptions_detected
        )
    }
}

/// Counts one run as its events are applied.
#[derive(Default)]
pub(crate) struct Tally {
    counts: Coverage,
    /// Each sled's expunged marker after the last event.
    expunged: BTreeMap<BaseboardId, Option<ExpungedMetadata>>,
}

impl Tally {
    /// Notes what `event` is about to do in `world`.
    pub(crate) fn before(&mut self, event: &Event, world: &World) {
        match event {
            Event::WipeDisk { sled } if world.rack.sleds.get(sled).is_some_and(|s| !s.is_up()) => {
                self.counts.wipes = self.counts.wipes.saturating_add(1);
            }
            Event::CorruptShare { from, to } => {
                let queued = world.rack.net.queued().any(|((f, t), m)| {
                    f == from && t == to && matches!(m.kind, PeerMsgKind::Share { .. })
                });
                if queued {
                    self.counts.corrupted_shares = self.counts.corrupted_shares.saturating_add(1);
                }
            }
            _ => {}
        }
    }

    /// Notes what the last event left in `world`.
    pub(crate) fn after(&mut self, world: &World) {
        for (id, s) in &world.rack.sleds {
            let now = s.disk().expunged();
            let before = self.expunged.get(id).and_then(Option::as_ref);
            if now.is_some() && now != before {
                self.counts.expunges = self.counts.expunges.saturating_add(1);
            }
            if now != before {
                self.expunged.insert(id.clone(), now.cloned());
            }
        }
    }

    /// The run's counts, completed from the simulation's final state.
    pub(crate) fn finish(mut self, sim: &Simulation) -> Coverage {
        let world = sim.world();
        let views = world.control.views();
        let aborted = views.values().filter(|v| v.state == ConfigState::Aborted).count();
        self.counts.aborts = u64::try_from(aborted).unwrap_or(u64::MAX);
        let reached = views.values().any(|v| {
            v.epoch.0 >= 3
                && matches!(v.state, ConfigState::Committed | ConfigState::CommittedPartially)
        });
        self.counts.epoch3_runs = u64::from(reached);
        self.counts.races_lost = world.control.races_lost();
        self.counts.not_available =
            sim.checker().load_answers().get("not_available").copied().unwrap_or(0);
        self.counts.byzantine =
            world.rack.adversary.as_ref().map(|a| a.injected()).unwrap_or_default();
        self.counts.corrupted_disks = world.disk_corruptions;
        self.counts.corruptions_detected = world.corruptions_detected;
        self.counts
    }
}
