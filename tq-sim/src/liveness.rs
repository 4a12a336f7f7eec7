//! The heal-and-drain phase at the end of every run (docs/protocol.md section
//! 7.2, end-of-run liveness; 7.1 AllNodesUnlock).
//!
//! Faults stop, partitions heal, crashed sleds restart, and the world keeps
//! delivering and ticking until the rack is settled ([`why_unsettled`] finds
//! nothing): the latest configuration committed at every required member
//! (an aborted one is proposed again), every newcomer in service, nothing in
//! flight, every running sled connected to every other, no coordination or
//! share computation left running, and every sled a committed configuration
//! removed that still talks to the rack (it holds a commit) told it is
//! expunged; such a sled is made to load its secret, as a booting sled
//! would, which is when a removed node learns of its removal. Then every
//! required member must load the identical rack secret, and opening the
//! sealed prior secrets at the latest epoch must give back each earlier
//! committed epoch's secret.
//!
//! Every way the phase can fail has a stable code ([`REASONS`]), the first
//! word of the failure's text.

use std::collections::BTreeSet;
use std::fmt;

use tq_types::membership::ConfigState;
use tq_types::membership::TrustQuorumConfig;
use tq_types::{BaseboardId, Epoch};

use crate::control;
use crate::event::Event;
use crate::invariants::Checker;
use crate::simulation::Simulation;
use crate::world::World;

/// The most events the phase may take.
pub const MAX_LIVENESS_EVENTS: u64 = 20_000;

/// Every code a liveness failure's text can start with: the
/// [`Unsettled::code`]s, then those of the secret checks.
pub const REASONS: &[&str] = &[
    "latest_not_committed",
    "member_not_committed",
    "member_down",
    "sled_down",
    "activation_pending",
    "in_flight",
    "not_connected",
    "removed_not_expunged",
    "still_coordinating",
    "still_computing",
    "safety_violation",
    "secret_not_loaded",
    "sealed_never_opened",
    "sealed_mismatch",
];

/// Why the rack has not settled yet.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Unsettled {
    /// The latest configuration is not Committed (or there is none).
    LatestNotCommitted {
        /// Its epoch.
        epoch: Option<Epoch>,
        /// Its state.
        state: Option<ConfigState>,
    },
    /// A required member has not committed the latest configuration.
    MemberNotCommitted {
        /// The member.
        member: BaseboardId,
        /// The latest epoch.
        epoch: Epoch,
    },
    /// A required member is down.
    MemberDown {
        /// The member.
        member: BaseboardId,
    },
    /// A sled is down (every sled restarts once faults stop).
    SledDown {
        /// The sled.
        sled: BaseboardId,
    },
    /// Members that committed as newcomers are not in service.
    ActivationPending {
        /// Those members.
        sleds: BTreeSet<BaseboardId>,
    },
    /// Messages are in flight between sleds or to or from the control plane.
    InFlight {
        /// Peer messages queued.
        peer_messages: usize,
        /// Whether control-plane requests or replies are in flight.
        control: bool,
    },
    /// Two running sleds are not connected.
    NotConnected {
        /// One end.
        a: BaseboardId,
        /// The other end.
        b: BaseboardId,
    },
    /// A running sled outside the latest configuration, which holds a
    /// commit (so a committed configuration removed it, and it still asks
    /// the rack for shares), does not know it was expunged.
    RemovedNotExpunged {
        /// The sled.
        sled: BaseboardId,
        /// Its latest committed epoch.
        latest_committed: Epoch,
    },
    /// A running sled still coordinates a configuration.
    StillCoordinating {
        /// The sled.
        sled: BaseboardId,
        /// The epoch it coordinates.
        epoch: Epoch,
    },
    /// A running sled still computes its share of a configuration.
    StillComputing {
        /// The sled.
        sled: BaseboardId,
        /// The epoch whose share it computes.
        epoch: Epoch,
    },
}

impl Unsettled {
    /// The reason's stable code, one of [`REASONS`].
    pub fn code(&self) -> &'static str {
        match self {
            Unsettled::LatestNotCommitted { .. } => "latest_not_committed",
            Unsettled::MemberNotCommitted { .. } => "member_not_committed",
            Unsettled::MemberDown { .. } => "member_down",
            Unsettled::SledDown { .. } => "sled_down",
            Unsettled::ActivationPending { .. } => "activation_pending",
            Unsettled::InFlight { .. } => "in_flight",
            Unsettled::NotConnected { .. } => "not_connected",
            Unsettled::StillCoordinating { .. } => "still_coordinating",
            Unsettled::StillComputing { .. } => "still_computing",
            Unsettled::RemovedNotExpunged { .. } => "removed_not_expunged",
        }
    }
}

impl fmt::Display for Unsettled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.code())?;
        match self {
            Unsettled::LatestNotCommitted { epoch: Some(e), state: Some(s) } => {
                write!(f, "latest epoch {e} is {s}")
            }
            Unsettled::LatestNotCommitted { .. } => write!(f, "the ledger is empty"),
            Unsettled::MemberNotCommitted { member, epoch } => {
                write!(f, "{member} has not committed {epoch}")
            }
            Unsettled::MemberDown { member } => write!(f, "{member} is down"),
            Unsettled::SledDown { sled } => write!(f, "{sled} is down"),
            Unsettled::ActivationPending { sleds } => {
                write!(f, "{} members not activated", sleds.len())
            }
            Unsettled::InFlight { peer_messages, control } => {
                write!(f, "{peer_messages} peer messages queued, control plane busy: {control}")
            }
            Unsettled::NotConnected { a, b } => write!(f, "{a} and {b} are not connected"),
            Unsettled::StillCoordinating { sled, epoch } => {
                write!(f, "{sled} still coordinates {epoch}")
            }
            Unsettled::StillComputing { sled, epoch } => {
                write!(f, "{sled} still computes its share of {epoch}")
            }
            Unsettled::RemovedNotExpunged { sled, latest_committed } => {
                write!(f, "{sled}, removed after committing {latest_committed}, is not expunged")
            }
        }
    }
}

/// Runs the phase, applying every event through `apply` (which applies it
/// to `sim` and logs it). A failure's text starts with one of [`REASONS`].
pub fn heal_and_drain(
    sim: &mut Simulation,
    apply: &mut dyn FnMut(&mut Simulation, Event),
) -> Result<(), String> {
    apply(sim, Event::BeginLiveness);
    let mut events = 0u64;
    let mut rebooted = BTreeSet::new();
    loop {
        if let Some(v) = sim.violations().first() {
            return Err(format!("safety_violation: {} during liveness", v.invariant));
        }
        let world = sim.world();
        let Some(why) = why_unsettled(world) else { break };
        if events >= MAX_LIVENESS_EVENTS {
            return Err(format!("{why} (not settled after {MAX_LIVENESS_EVENTS} events)"));
        }
        let quiet = world.control.is_idle() && world.rack.net.in_flight() == 0;
        let event = match (control::retry_event(&world.control), why) {
            (Some(e), _) if quiet => e,
            // A removed sled learns it was expunged when it next asks the
            // rack for shares, as it does when it boots and loads its
            // secret (before that, it may answer loads from its cache).
            (_, Unsettled::RemovedNotExpunged { sled, .. }) if quiet => {
                if rebooted.insert(sled.clone()) {
                    Event::Crash { sled }
                } else {
                    Event::LoadSecret { sled }
                }
            }
            _ => sim.next_event(),
        };
        apply(sim, event);
        events = events.saturating_add(1);
    }
    check_secrets(sim, apply)
}

/// Applies fault-free events until the rack is settled (see
/// [`why_unsettled`]); returns how many events that took. Call after
/// [`Event::BeginLiveness`] for a fault-free world. Unlike
/// [`heal_and_drain`] it only waits: it retries nothing and makes no sled
/// load its secret.
///
/// A checker watches the events it applies, starting from what `world`
/// reported since its run loop last took its observations; a safety
/// violation stops it.
pub fn settle(world: &mut World, max_events: u64) -> Result<u64, String> {
    let mut checker = Checker::default();
    let observed = world.take_observations();
    checker.after_event(observed, world);
    let mut events = 0u64;
    while let Some(why) = why_unsettled(world) {
        if let Some(v) = checker.violations().first() {
            return Err(format!("safety_violation: {}", v.invariant));
        }
        if events >= max_events {
            return Err(format!("{why} (not settled after {max_events} events)"));
        }
        let e = world.next_event();
        world.apply(&e);
        let observed = world.take_observations();
        checker.after_event(observed, world);
        events = events.saturating_add(1);
    }
    Ok(events)
}

/// The members of `view` that must commit and load the secret: all but
/// those whose disk was lost after `view` had committed (nothing in the
/// protocol restores them; the operator replaces them).
fn required_members<'a>(world: &World, view: &'a TrustQuorumConfig) -> Vec<&'a BaseboardId> {
    view.members.keys().filter(|m| world.lost_after_commit.get(*m) != Some(&view.epoch)).collect()
}

/// The first reason, in the order of [`Unsettled`]'s variants, why the rack
/// is not settled; `None` once it is.
pub fn why_unsettled(world: &World) -> Option<Unsettled> {
    let Some(view) = world.control.latest_view() else {
        return Some(Unsettled::LatestNotCommitted { epoch: None, state: None });
    };
    if view.state != ConfigState::Committed {
        return Some(Unsettled::LatestNotCommitted {
            epoch: Some(view.epoch),
            state: Some(view.state),
        });
    }
    for m in required_members(world, &view) {
        if !world.rack.sleds.get(m).is_some_and(|s| s.disk().commits().contains(&view.epoch)) {
            return Some(Unsettled::MemberNotCommitted { member: m.clone(), epoch: view.epoch });
        }
        if !world.rack.is_up(m) {
            return Some(Unsettled::MemberDown { member: m.clone() });
        }
    }
    if let Some(sled) = world.rack.sleds.iter().find(|(_, s)| !s.is_up()).map(|(id, _)| id) {
        return Some(Unsettled::SledDown { sled: sled.clone() });
    }
    let pending = world.control.pending_activations();
    if !pending.is_empty() {
        return Some(Unsettled::ActivationPending { sleds: pending });
    }
    let queued = world.rack.net.in_flight();
    if queued > 0 || !world.control.is_idle() {
        return Some(Unsettled::InFlight {
            peer_messages: queued,
            control: !world.control.is_idle(),
        });
    }
    let up = world.rack.up_sleds();
    for (i, a) in up.iter().enumerate() {
        for b in up.iter().skip(i.saturating_add(1)) {
            if !world.rack.net.is_connected(a, b) {
                return Some(Unsettled::NotConnected { a: a.clone(), b: b.clone() });
            }
        }
    }
    for (id, s) in &world.rack.sleds {
        if !s.is_up() || view.members.contains_key(id) || s.disk().expunged().is_some() {
            continue;
        }
        if let Some(latest_committed) = s.disk().latest_committed_epoch() {
            return Some(Unsettled::RemovedNotExpunged { sled: id.clone(), latest_committed });
        }
    }
    activity(world)
}

/// The first running sled still coordinating or computing a share.
fn activity(world: &World) -> Option<Unsettled> {
    for (id, s) in &world.rack.sleds {
        let Some((node, ctx)) = s.embedded.live() else { continue };
        let status = node.status(ctx);
        if let Some(epoch) = status.coordinating {
            return Some(Unsettled::StillCoordinating { sled: id.clone(), epoch });
        }
        if let Some(epoch) = status.computing_share {
            return Some(Unsettled::StillComputing { sled: id.clone(), epoch });
        }
    }
    None
}

/// Every member loads the identical secret of the latest epoch (checked for
/// agreement as it is loaded), and the secrets sealed in the latest
/// configuration are exactly those of its committed ancestors.
fn check_secrets(
    sim: &mut Simulation,
    apply: &mut dyn FnMut(&mut Simulation, Event),
) -> Result<(), String> {
    let view =
        sim.world().control.latest_view().ok_or("latest_not_committed: the ledger is empty")?;
    let epoch = view.epoch;
    // The compromised sled's loads are not judged (its answers are the
    // attacker's), so only honest members must load.
    let members: Vec<BaseboardId> = required_members(sim.world(), &view)
        .into_iter()
        .filter(|m| !sim.checker().is_compromised(m))
        .cloned()
        .collect();
    for m in &members {
        for _ in 0..50 {
            if sim.checker().has_loaded(m, epoch) {
                break;
            }
            apply(sim, Event::LoadSecret { sled: m.clone() });
            let mut drained = 0u32;
            while sim.world().rack.net.in_flight() > 0 && drained < 10_000 {
                let e = sim.next_event();
                apply(sim, e);
                drained = drained.saturating_add(1);
            }
        }
        if !sim.checker().has_loaded(m, epoch) {
            return Err(format!("secret_not_loaded: {m} never loaded the secret of {epoch}"));
        }
    }
    if let Some(v) = sim.violations().first() {
        return Err(format!("safety_violation: {} while loading secrets", v.invariant));
    }
    let committed: Vec<Epoch> = sim
        .world()
        .control
        .views()
        .values()
        .filter(|v| {
            v.epoch < epoch
                && matches!(v.state, ConfigState::Committed | ConfigState::CommittedPartially)
        })
        .map(|v| v.epoch)
        .collect();
    judge_sealed(epoch, sim.checker().sealed_epochs(epoch), &committed)
}

/// The epochs sealed in the configuration of `epoch`, as opened on a load,
/// are exactly its committed ancestors.
fn judge_sealed(epoch: Epoch, sealed: Option<&[Epoch]>, committed: &[Epoch]) -> Result<(), String> {
    let sealed =
        sealed.ok_or_else(|| format!("sealed_never_opened: the sealed secrets of {epoch}"))?;
    if sealed != committed {
        return Err(format!(
            "sealed_mismatch: sealed epochs {sealed:?} differ from committed ancestors {committed:?}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod firing;
