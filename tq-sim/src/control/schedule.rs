//! Which control-plane event happens next: faults, ordinary progress,
//! operator requests, the liveness phase's retry of an aborted change, and
//! which disk losses the rack can survive.

use std::collections::BTreeSet;

use rand_chacha::ChaCha20Rng;
use rand_core::Rng;
use tq_types::BaseboardId;
use tq_types::membership::ConfigState;

use crate::control::side::ControlSide;
use crate::event::Event;
use crate::faults::{FaultPlan, chance};
use crate::rack::Rack;
use crate::random::{below, pick};

fn pick_index(rng: &mut ChaCha20Rng, len: usize, reorder: bool) -> usize {
    if reorder { below(rng, len) } else { 0 }
}

/// A control-plane fault, drawn from `rng` with the plan's probabilities.
pub(crate) fn fault_event(
    side: &ControlSide,
    rng: &mut ChaCha20Rng,
    plan: &FaultPlan,
    faults_on: bool,
) -> Option<Event> {
    let up = side.up_replicas();
    let down = side.down_replicas();
    if up.len() > 1 && chance(rng, plan.control_crash) {
        return pick(rng, &up).map(|replica| Event::ControlCrash { replica });
    }
    if !down.is_empty() && (rng.next_u32() % 20 == 0 || !faults_on) {
        return pick(rng, &down).map(|replica| Event::ControlRestart { replica });
    }
    if chance(rng, plan.control_race) {
        return pick(rng, &up).map(|replica| Event::ControlStale { replica });
    }
    let nreq = side.request_count();
    let nrep = side.reply_count();
    if nreq > 0 && chance(rng, plan.control_loss) {
        return Some(Event::LoseControlRequest { index: pick_index(rng, nreq, true) });
    }
    if nrep > 0 && chance(rng, plan.control_loss) {
        return Some(Event::LoseControlReply { index: pick_index(rng, nrep, true) });
    }
    None
}

/// Ordinary control-plane progress: a driver pass, a request or a reply
/// (picked out of order with `reorder`).
pub(crate) fn progress_event(
    side: &ControlSide,
    rng: &mut ChaCha20Rng,
    reorder: bool,
) -> Option<Event> {
    let up = side.up_replicas();
    let nreq = side.request_count();
    let nrep = side.reply_count();
    // Long queues are drained before the driver adds to them.
    let roll =
        if nreq.saturating_add(nrep) > 16 { rng.next_u32() % 8 } else { rng.next_u32() % 10 };
    if nreq > 0 && roll < 4 {
        return Some(Event::ControlRequest { index: pick_index(rng, nreq, reorder) });
    }
    if nrep > 0 && roll < 8 {
        return Some(Event::ControlReply { index: pick_index(rng, nrep, reorder) });
    }
    pick(rng, &up).map(|replica| Event::ControlTick { replica })
}

/// An operator request: mostly adding or removing sleds, rarely an abort.
pub(crate) fn operator_event(side: &ControlSide, rng: &mut ChaCha20Rng) -> Option<Event> {
    let up = side.up_replicas();
    let members = side.observer().membership();
    let spares: Vec<BaseboardId> =
        side.universe().iter().filter(|s| !members.contains(*s)).cloned().collect();
    let members: Vec<BaseboardId> = members.into_iter().collect();
    let replica = pick(rng, &up)?;
    let roll = rng.next_u32() % 10;
    if roll < 5 && !spares.is_empty() {
        let n = below(rng, 3).saturating_add(1);
        let mut sleds = BTreeSet::new();
        for _ in 0..n {
            if let Some(s) = pick(rng, &spares) {
                sleds.insert(s);
            }
        }
        return Some(Event::AddSleds { replica, sleds: sleds.into_iter().collect() });
    }
    if roll < 9 {
        let sled = pick(rng, &members)?;
        return Some(Event::RemoveSleds { replica, sleds: vec![sled] });
    }
    Some(Event::Abort { replica })
}

/// The membership change the liveness phase must retry after an abort: the
/// aborted configuration's members compared with the current membership.
pub(crate) fn retry_event(side: &ControlSide) -> Option<Event> {
    let view = side.latest_view()?;
    if view.state != ConfigState::Aborted {
        return None;
    }
    let cp = side.observer();
    let members = cp.membership();
    let target: BTreeSet<BaseboardId> = view.members.keys().cloned().collect();
    let replica = *side.up_replicas().first()?;
    if cp.last_committed_epoch().is_none() {
        return Some(Event::Initialize { replica, sleds: target.into_iter().collect() });
    }
    let add: Vec<BaseboardId> = target.difference(&members).cloned().collect();
    if !add.is_empty() {
        return Some(Event::AddSleds { replica, sleds: add });
    }
    let remove: Vec<BaseboardId> = members.difference(&target).cloned().collect();
    if !remove.is_empty() {
        return Some(Event::RemoveSleds { replica, sleds: remove });
    }
    None
}

/// Whether wiping `sled`'s disk keeps every configuration the rack depends
/// on recoverable: the rack tolerates losing a member's share only while K
/// other members still hold theirs, and a preparing configuration with no
/// crash tolerance (Z = 0) may already count the sled's acknowledgement.
/// The simulator injects only such disk losses, since the protocol promises
/// nothing beyond them (docs/protocol.md section 7.3, recoverability).
pub(crate) fn wipe_is_survivable(side: &ControlSide, rack: &Rack, sled: &BaseboardId) -> bool {
    let cp = side.observer();
    let holders =
        |e| rack.sleds.iter().filter(|(id, s)| *id != sled && s.disk().is_prepared(e)).count();
    let base = cp.last_committed_epoch().and_then(|e| cp.config(e));
    let latest = cp.latest();
    for view in base.iter().chain(latest.iter()) {
        if !view.members.contains_key(sled) {
            continue;
        }
        let k = usize::from(view.threshold.0);
        match view.state {
            ConfigState::Preparing if view.commit_crash_tolerance == 0 => return false,
            ConfigState::Preparing | ConfigState::Aborted => {}
            ConfigState::Committing | ConfigState::Committed | ConfigState::CommittedPartially => {
                if holders(view.epoch) < k {
                    return false;
                }
            }
        }
    }
    true
}
