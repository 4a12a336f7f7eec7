//! The heal-and-drain phase at the end of every run (docs/protocol.md section
//! 7.2, end-of-run liveness; 7.1 AllNodesUnlock).
//!
//! Faults stop, partitions heal, crashed sleds restart, and the world keeps
//! delivering and ticking until the latest configuration is committed at
//! every member (an aborted one is proposed again), every newly joined
//! member is in service and nothing is left in flight. Then every member
//! must load the identical rack secret, and opening the sealed prior secrets
//! at the latest epoch must give back each earlier epoch's secret.

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

/// Runs the phase, applying every event through `apply` (which applies it
/// to `sim` and logs it).
pub fn heal_and_drain(
    sim: &mut Simulation,
    apply: &mut dyn FnMut(&mut Simulation, Event),
) -> Result<(), String> {
    apply(sim, Event::BeginLiveness);
    let mut events = 0u64;
    loop {
        if let Some(v) = sim.violations().first() {
            return Err(format!("safety violation during liveness: {}", v.invariant));
        }
        let world = sim.world();
        if settled(world) {
            break;
        }
        if events >= MAX_LIVENESS_EVENTS {
            return Err(format!(
                "not settled after {MAX_LIVENESS_EVENTS} events: {}",
                why_unsettled(world)
            ));
        }
        let event = match control::retry_event(&world.control) {
            Some(e) if world.control.is_idle() && world.rack.net.in_flight() == 0 => e,
            _ => sim.next_event(),
        };
        apply(sim, event);
        events = events.saturating_add(1);
    }
    check_secrets(sim, apply)
}

/// Applies fault-free events until the rack is settled (the latest
/// configuration committed at every member, every member in service,
/// nothing in flight, every sled up and connected); returns how many events
/// that took. Call after [`Event::BeginLiveness`] for a fault-free world.
///
/// A checker watches the events it applies, starting from what `world`
/// reported since its run loop last took its observations; a safety
/// violation stops it.
pub fn settle(world: &mut World, max_events: u64) -> Result<u64, String> {
    let mut checker = Checker::default();
    let observed = world.take_observations();
    checker.after_event(observed, world);
    let mut events = 0u64;
    while !settled(world) {
        if let Some(v) = checker.violations().first() {
            return Err(format!("safety violation: {}", v.invariant));
        }
        if events >= max_events {
            return Err(format!("not settled after {max_events} events: {}", why_unsettled(world)));
        }
        let e = world.next_event();
        world.apply(&e);
        let observed = world.take_observations();
        checker.after_event(observed, world);
        events = events.saturating_add(1);
    }
    Ok(events)
}

/// The latest configuration committed at every member, every member in
/// service, nothing in flight, every sled up and connected to every other.
fn settled(world: &World) -> bool {
    why_unsettled(world).is_empty()
}

/// The members of `view` that must commit and load the secret: all but
/// those whose disk was lost after `view` had committed (nothing in the
/// protocol restores them; the operator replaces them).
fn required_members<'a>(world: &World, view: &'a TrustQuorumConfig) -> Vec<&'a BaseboardId> {
    view.members.keys().filter(|m| world.lost_after_commit.get(*m) != Some(&view.epoch)).collect()
}

fn why_unsettled(world: &World) -> String {
    let Some(view) = world.control.latest_view() else { return "no configuration".to_owned() };
    if view.state != ConfigState::Committed {
        return format!("latest epoch {} is {}", view.epoch, view.state);
    }
    for m in required_members(world, &view) {
        if !world.rack.sleds.get(m).is_some_and(|s| s.disk().commits().contains(&view.epoch)) {
            return format!("{m} has not committed {}", view.epoch);
        }
        if !world.rack.is_up(m) {
            return format!("{m} is down");
        }
    }
    let pending = world.control.pending_activations();
    if !pending.is_empty() {
        return format!("{} members not activated", pending.len());
    }
    if world.rack.net.in_flight() > 0 || !world.control.is_idle() {
        return "messages in flight".to_owned();
    }
    let up = world.rack.up_sleds();
    for (i, a) in up.iter().enumerate() {
        for b in up.iter().skip(i.saturating_add(1)) {
            if !world.rack.net.is_connected(a, b) {
                return format!("{a} and {b} are not connected");
            }
        }
    }
    String::new()
}

/// Every member loads the identical secret of the latest epoch (checked for
/// agreement as it is loaded), and the secrets sealed in the latest
/// configuration are exactly those of its committed ancestors.
fn check_secrets(
    sim: &mut Simulation,
    apply: &mut dyn FnMut(&mut Simulation, Event),
) -> Result<(), String> {
    let view = sim.world().control.latest_view().ok_or("no configuration")?;
    let epoch = view.epoch;
    let members: Vec<BaseboardId> =
        required_members(sim.world(), &view).into_iter().cloned().collect();
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
            return Err(format!("{m} never loaded the secret of {epoch}"));
        }
    }
    if let Some(v) = sim.violations().first() {
        return Err(format!("safety violation while loading secrets: {}", v.invariant));
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
    let sealed = sim.checker().sealed_epochs(epoch).ok_or("sealed secrets never opened")?;
    if sealed != committed.as_slice() {
        return Err(format!(
            "sealed epochs {sealed:?} differ from committed ancestors {committed:?}"
        ));
    }
    Ok(())
}
