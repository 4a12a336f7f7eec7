//! Each liveness reason fires: a world that is settled but for exactly one
//! thing is reported with exactly that reason's code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::BTreeSet;

use tq_types::{BaseboardId, ConfigState, Epoch, PeerMsg, PeerMsgKind, ReconfigureMsg};

use super::*;
use crate::{FaultPreset, SimOptions};

/// A fault-free world of 8 sleds after `steps` events of its fault phase,
/// then the liveness phase's first event.
fn ended_fault_phase(seed: u64, steps: u64) -> World {
    let mut world = World::new(SimOptions { faults: FaultPreset::None, ..SimOptions::new(seed) });
    for _ in 0..steps {
        let e = world.next_event();
        world.apply(&e);
    }
    world.apply(&Event::BeginLiveness);
    world
}

/// Steps `world` until `stop` holds of its first unsettled reason.
fn step_until(world: &mut World, stop: impl Fn(&Unsettled) -> bool) -> Unsettled {
    for _ in 0..MAX_LIVENESS_EVENTS {
        if let Some(why) = why_unsettled(world).filter(|w| stop(w)) {
            return why;
        }
        let e = world.next_event();
        world.apply(&e);
    }
    panic!("never reached; last reason {:?}", why_unsettled(world));
}

/// A settled fault-free world whose latest configuration is at least epoch
/// 2 and holds every sled that has ever committed.
fn settled() -> World {
    let mut world = ended_fault_phase(3, 150);
    settle(&mut world, MAX_LIVENESS_EVENTS).unwrap();
    assert_eq!(why_unsettled(&world), None);
    world
}

fn latest_members(world: &World) -> Vec<BaseboardId> {
    world.control.latest_view().unwrap().members.keys().cloned().collect()
}

#[test]
fn every_reason_has_a_firing_test() {
    let this = include_str!("firing.rs");
    for code in REASONS {
        assert!(this.contains(&format!("\"{code}\"")), "{code} has no firing test");
    }
}

#[test]
fn latest_not_committed_fires() {
    let world = World::new(SimOptions::new(1));
    assert_eq!(why_unsettled(&world).unwrap().code(), "latest_not_committed");
}

#[test]
fn member_not_committed_and_member_down_fire() {
    let mut world = settled();
    let m = latest_members(&world)[0].clone();
    world.rack.crash(&m);
    assert_eq!(why_unsettled(&world).unwrap().code(), "member_down");
    world.rack.sleds.get_mut(&m).unwrap().embedded.wipe();
    assert_eq!(why_unsettled(&world).unwrap().code(), "member_not_committed");
}

#[test]
fn sled_down_fires() {
    let mut world = settled();
    let members = latest_members(&world);
    let spare = world.rack.sleds.keys().find(|s| !members.contains(s)).unwrap().clone();
    world.rack.crash(&spare);
    assert_eq!(why_unsettled(&world).unwrap().code(), "sled_down");
}

#[test]
fn activation_pending_fires() {
    // A change that adds sleds, driven until only their activation is missing.
    let mut world = settled();
    let spare: Vec<BaseboardId> = {
        let members = latest_members(&world);
        world.rack.sleds.keys().filter(|s| !members.contains(s)).cloned().collect()
    };
    world.apply(&Event::AddSleds { replica: 0, sleds: spare });
    let why = step_until(&mut world, |w| {
        !matches!(
            w,
            Unsettled::LatestNotCommitted { .. }
                | Unsettled::MemberNotCommitted { .. }
                | Unsettled::InFlight { .. }
        )
    });
    assert_eq!(why.code(), "activation_pending", "{why}");
}

#[test]
fn in_flight_and_not_connected_fire() {
    let mut world = settled();
    let members = latest_members(&world);
    let (a, b) = (&members[0], &members[1]);
    let msg = PeerMsg { rack_id: world.rack_id, kind: PeerMsgKind::GetShare(Epoch(1)) };
    assert!(world.rack.net.send(a, b, msg));
    assert_eq!(why_unsettled(&world).unwrap().code(), "in_flight");
    world.rack.net.disconnect(a, b);
    assert_eq!(why_unsettled(&world).unwrap().code(), "not_connected");
}

#[test]
fn removed_not_expunged_fires() {
    // Some seed removes sleds in its fault phase; without the liveness
    // phase's reboot and load, a removed sled is never told.
    let (world, why) = (0..50)
        .find_map(|seed| {
            let mut world = ended_fault_phase(seed, 2000);
            let mut why = None;
            for _ in 0..MAX_LIVENESS_EVENTS {
                why = why_unsettled(&world);
                if why.as_ref().is_none_or(|w| w.code() == "removed_not_expunged") {
                    break;
                }
                let e = world.next_event();
                world.apply(&e);
            }
            why.filter(|w| w.code() == "removed_not_expunged").map(|w| (world, w))
        })
        .expect("some seed leaves a removed sled untold");
    let Unsettled::RemovedNotExpunged { sled, .. } = &why else { unreachable!() };
    assert!(!latest_members(&world).contains(sled));
    assert_eq!(why.code(), "removed_not_expunged");
}

#[test]
fn still_coordinating_fires() {
    let mut world = settled();
    let view = world.control.latest_view().unwrap();
    let coordinator = view.coordinator.clone();
    let msg = ReconfigureMsg {
        rack_id: world.rack_id,
        epoch: Epoch(view.epoch.0 + 1),
        last_committed_epoch: Some(view.epoch),
        members: view.members.keys().cloned().collect::<BTreeSet<_>>(),
        threshold: view.threshold,
        coordinator: coordinator.clone(),
    };
    let msg = crate::random::authority(world.options.seed).sign_reconfigure(msg).unwrap();
    let answer = world.rack.call(&coordinator, |n, ctx| n.coordinate_reconfiguration(ctx, msg));
    assert!(answer.is_some());
    // Its requests for the old shares are dropped: only the coordination is left.
    for link in world.rack.net.busy_links() {
        while world.rack.net.take(&link, 0).is_some() {}
    }
    assert_eq!(why_unsettled(&world).unwrap().code(), "still_coordinating");
}

#[test]
fn still_computing_fires() {
    // A member that missed a prepare computes its share after the commit.
    let computing = |world: &World| {
        let statuses: Vec<_> = world
            .rack
            .sleds
            .values()
            .filter_map(|s| s.embedded.live())
            .map(|(n, c)| n.status(c))
            .collect();
        statuses.iter().all(|st| st.coordinating.is_none())
            && statuses.iter().any(|st| st.computing_share.is_some())
    };
    let world = (0..50)
        .find_map(|seed| {
            let mut world = World::new(SimOptions::new(seed));
            for _ in 0..2000 {
                if computing(&world) {
                    return Some(world);
                }
                let e = world.next_event();
                world.apply(&e);
            }
            None
        })
        .expect("some swarm seed computes a share in its fault phase");
    assert_eq!(activity(&world).map(|w| w.code()), Some("still_computing"));
}

#[test]
fn secret_and_sealed_failures_fire() {
    // A required member that is down at the end never loads the secret.
    let mut sim = Simulation::new(SimOptions { faults: FaultPreset::None, ..SimOptions::new(3) });
    sim.apply(&Event::BeginLiveness);
    while why_unsettled(sim.world()).is_some() {
        let e = sim.next_event();
        sim.apply(&e);
    }
    let epoch = sim.world().control.latest_view().unwrap().epoch;
    let members = latest_members(sim.world());
    let m = members.iter().find(|m| !sim.checker().has_loaded(m, epoch)).unwrap().clone();
    sim.apply(&Event::Crash { sled: m });
    let err = check_secrets(&mut sim, &mut |s: &mut Simulation, e: Event| s.apply(&e));
    assert!(err.as_ref().unwrap_err().starts_with("secret_not_loaded"), "{err:?}");

    assert!(judge_sealed(Epoch(3), None, &[]).unwrap_err().starts_with("sealed_never_opened"));
    let err = judge_sealed(Epoch(3), Some(&[Epoch(1)]), &[Epoch(1), Epoch(2)]).unwrap_err();
    assert!(err.starts_with("sealed_mismatch"), "{err}");
    assert_eq!(judge_sealed(Epoch(3), Some(&[Epoch(1)]), &[Epoch(1)]), Ok(()));
}

#[test]
fn safety_violation_fires() {
    // A member's disk blanked behind the checker's back: its recorded
    // commit is gone, which the checker reports, and settling stops.
    let mut world = settled();
    let m = latest_members(&world)[0].clone();
    world.rack.crash(&m);
    world.rack.sleds.get_mut(&m).unwrap().embedded.wipe();
    let err = settle(&mut world, 100).unwrap_err();
    assert!(err.starts_with("safety_violation"), "{err}");
    assert_eq!(ConfigState::Committed, world.control.latest_view().unwrap().state);
}
