//! Tests of the rules behind the firing cases: one exact rule per load
//! answer, the ground truth the loads are judged against, the narrowness of
//! wipe exemptions, and the world drawing loads that get every answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::BTreeMap;

use tq_types::{CoordinatorStatus, Epoch, ExpungedMetadata, LoadRackSecretError as E};
use trust_quorum::PersistentState;

use super::Checker;
use super::loads::Answer;
use super::support::{edit, fx, load_with};
use crate::event::Event;
use crate::faults::FaultPreset;
use crate::observation::Observation;
use crate::options::SimOptions;
use crate::simulation::Simulation;
use crate::world::{Exemptions, GroundTruth, LostFacts, World, sled_id};

/// Whether the load rules accept `result` from sled `who` with `disk`.
fn accepted(who: usize, epoch: u64, result: Answer, disk: &PersistentState, alarmed: bool) -> bool {
    accepted_in(who, epoch, result, disk, alarmed, &fx().truth)
}

fn accepted_in(
    who: usize,
    epoch: u64,
    result: Answer,
    disk: &PersistentState,
    alarmed: bool,
    truth: &GroundTruth,
) -> bool {
    let mut c = Checker::default();
    c.load_postconditions(&sled_id(who), Epoch(epoch), &result, disk, alarmed, truth);
    c.violations().is_empty()
}

fn expunged_at(disk: &PersistentState, epoch: u64) -> PersistentState {
    let certificate = *fx().disk(0).certificate(Epoch(2)).unwrap();
    let ex = ExpungedMetadata { epoch: Epoch(epoch), from: sled_id(0), certificate };
    edit(disk, |d| d.expunged = Some(ex))
}

#[test]
fn each_load_answer_has_an_exact_rule() {
    let d0 = fx().disk(0); // latest committed 2
    let blank = PersistentState::new(*fx().disk(0).authority());
    let s = |e: u64| Ok(Some(fx().secret(e)));
    // Only epoch 2 committed (as if epoch 1 had been aborted).
    let mut only_2 = GroundTruth::default();
    only_2.learn(&[Observation::Persisted {
        who: sled_id(0),
        old: blank.clone(),
        new: std::sync::Arc::new(edit(d0, |d| {
            d.commits.remove(&Epoch(1));
        })),
    }]);

    // A secret: committed locally at or above, and committed somewhere.
    assert!(accepted(0, 2, s(2), d0, false));
    assert!(accepted(0, 1, s(1), d0, false));
    assert!(!accepted(0, 3, s(2), d0, false), "above the latest commit");
    assert!(!accepted_in(0, 1, s(1), d0, false, &only_2), "never committed");
    // Pending: committed locally at or above.
    assert!(accepted(0, 1, Ok(None), d0, false));
    assert!(!accepted(0, 3, Ok(None), d0, false));
    assert!(!accepted(0, 1, Ok(None), &blank, false));
    // Nothing committed locally.
    assert!(accepted(4, 1, Err(E::NoCommittedConfigurations), &blank, false));
    assert!(!accepted(0, 1, Err(E::NoCommittedConfigurations), d0, false));
    // Not committed: above the latest commit, naming the requested epoch.
    assert!(accepted(0, 3, Err(E::NotCommitted(Epoch(3))), d0, false));
    assert!(!accepted(0, 2, Err(E::NotCommitted(Epoch(2))), d0, false));
    assert!(!accepted(0, 3, Err(E::NotCommitted(Epoch(4))), d0, false));
    assert!(!accepted(4, 3, Err(E::NotCommitted(Epoch(3))), &blank, false));
    // Not available: below the latest commit and never committed anywhere.
    assert!(accepted_in(0, 1, Err(E::NotAvailable(Epoch(1))), d0, false, &only_2));
    assert!(!accepted(0, 1, Err(E::NotAvailable(Epoch(1))), d0, false), "1 is committed");
    assert!(!accepted_in(0, 2, Err(E::NotAvailable(Epoch(2))), d0, false, &only_2));
    assert!(!accepted_in(0, 1, Err(E::NotAvailable(Epoch(0))), d0, false, &only_2));
    // Alarm: only with an alarm raised.
    assert!(accepted(0, 2, Err(E::Alarm(Epoch(2))), d0, true));
    assert!(!accepted(0, 2, Err(E::Alarm(Epoch(2))), d0, false));
    // Expunged: the durable marker, at a committed epoch that excludes the
    // sled. Sled 3 joined at epoch 2.
    let d3 = fx().disk(3);
    assert!(accepted(3, 2, Err(E::Expunged { epoch: Epoch(1) }), &expunged_at(d3, 1), false));
    assert!(!accepted(3, 2, Err(E::Expunged { epoch: Epoch(1) }), d3, false), "no marker");
    assert!(!accepted(3, 2, Err(E::Expunged { epoch: Epoch(2) }), &expunged_at(d3, 1), false));
    assert!(!accepted(3, 2, Err(E::Expunged { epoch: Epoch(2) }), &expunged_at(d3, 2), false));
    assert!(!accepted(3, 2, Err(E::Expunged { epoch: Epoch(3) }), &expunged_at(d3, 3), false));
    // Every other answer from an expunged sled is wrong.
    assert!(!accepted(3, 2, s(2), &expunged_at(d3, 1), false));
    assert!(!accepted(3, 2, Ok(None), &expunged_at(d3, 1), false));
}

#[test]
fn the_truth_holds_the_generated_secrets_and_the_commits() {
    let truth = &fx().truth;
    for e in [1, 2] {
        assert_eq!(truth.secret(Epoch(e)), Some(fx().secret(e).expose()), "epoch {e}");
        assert!(truth.is_committed(Epoch(e)));
    }
    assert!(!truth.is_committed(Epoch(3)) && truth.secret(Epoch(3)).is_none());
    assert_eq!(truth.committed_below(Epoch(2)), vec![Epoch(1)]);
    assert_eq!(truth.splits()[&Epoch(2)].handed.len(), 4, "own share and three prepares");
}

#[test]
fn a_secret_is_judged_against_the_generated_one() {
    // A truth that never saw epoch 1's shares cannot vouch for its secret.
    let mut c = Checker::default();
    let truth = GroundTruth::default();
    load_with(&mut c, 0, 1, Ok(Some(fx().secret(1))), fx().disk(0), false, &truth);
    assert!(c.violations().iter().any(|v| v.invariant == "secret_agreement"));
    // A configuration whose sealed secrets do not open.
    let mut c = Checker::default();
    let disk = edit(fx().disk(0), |d| {
        let sealed = d.configs.get_mut(&Epoch(2)).unwrap().encrypted_rack_secrets.as_mut();
        sealed.unwrap().data[0] ^= 1;
    });
    load_with(&mut c, 0, 2, Ok(Some(fx().secret(2))), &disk, false, &fx().truth);
    assert_eq!(c.violations()[0].invariant, "chain_completeness");
}

/// Sled 1 coordinates epoch 2 and counts sled 0 acked; sled 0's disk is
/// blank, and the world learned that a wipe of sled 0 took `lost`.
fn acked_by_wiped_0(c: &mut Checker, wiped: Option<(usize, PersistentState)>) {
    let mut disks = fx().disks.clone();
    disks.insert(sled_id(0), PersistentState::new(*fx().disk(0).authority()));
    let mut truth = GroundTruth::default();
    if let Some((who, lost)) = wiped {
        truth.learn(&[Observation::Wiped { who: sled_id(who), lost }]);
    }
    let status = CoordinatorStatus {
        config: fx().config(2).clone(),
        acked_prepares: [sled_id(0)].into_iter().collect(),
    };
    c.acked_members_have_prepared(&sled_id(1), &status, |m| disks.get(m), truth.lost());
}

#[test]
fn a_wipe_excuses_only_the_facts_it_took() {
    // No wipe: the ack is not excused.
    let mut c = Checker::default();
    acked_by_wiped_0(&mut c, None);
    assert_eq!(c.violations()[0].invariant, "acked_members_prepared");

    // The disk lost held epoch 1 only: the ack of epoch 2 is not excused.
    let mut c = Checker::default();
    let lost = edit(fx().disk(0), |d| {
        d.configs.remove(&Epoch(2));
        d.shares.remove(&Epoch(2));
        d.commits.remove(&Epoch(2));
    });
    acked_by_wiped_0(&mut c, Some((0, lost)));
    assert_eq!(c.violations()[0].invariant, "acked_members_prepared");
    assert_eq!(c.exemptions_used(), 0);

    // Another sled's loss excuses nothing about sled 0.
    let mut c = Checker::default();
    acked_by_wiped_0(&mut c, Some((1, fx().disk(1).clone())));
    assert_eq!(c.violations().len(), 1);

    // The disk lost held the prepare of epoch 2: excused, counted once
    // however often the check runs.
    let mut c = Checker::default();
    acked_by_wiped_0(&mut c, Some((0, fx().disk(0).clone())));
    acked_by_wiped_0(&mut c, Some((0, fx().disk(0).clone())));
    assert!(c.violations().is_empty(), "{:?}", c.violations());
    assert_eq!(c.exemptions_used(), 1);
}

#[test]
fn lost_facts_are_the_prepares_and_commits_the_disk_held() {
    let mut lost = LostFacts::default();
    // Sled 3 held epoch 2 only; a blank disk holds nothing.
    lost.record(&sled_id(3), fx().disk(3));
    lost.record(&sled_id(4), &PersistentState::new(*fx().disk(0).authority()));
    assert!(lost.prepare(&sled_id(3), Epoch(2)) && lost.commit(&sled_id(3), Epoch(2)));
    assert!(!lost.prepare(&sled_id(3), Epoch(1)) && !lost.commit(&sled_id(3), Epoch(1)));
    assert!(!lost.prepare(&sled_id(3), Epoch(3)));
    assert_eq!(lost.sleds(), [sled_id(3)].into_iter().collect());
    // A prepared but uncommitted epoch is a lost prepare, not a lost commit;
    // what the disk held before, and has since dropped, is lost too.
    let mut lost = LostFacts::default();
    lost.persisted(&sled_id(0), &fx().epoch1_disks[&sled_id(0)]);
    lost.record(
        &sled_id(0),
        &edit(fx().disk(0), |d| {
            d.commits.remove(&Epoch(2));
        }),
    );
    assert!(lost.prepare(&sled_id(0), Epoch(2)) && !lost.commit(&sled_id(0), Epoch(2)));
    let mut used = Exemptions::default();
    assert!(!used.excuse_commit(&lost, "acked_commits_are_commits", &sled_id(0), Epoch(2)));
    assert!(used.excuse_commit(&lost, "acked_commits_are_commits", &sled_id(0), Epoch(1)));
    assert_eq!(used.used(), 1);
}

#[test]
fn wiping_a_blank_disk_loses_nothing() {
    let options = SimOptions { nodes: 5, faults: FaultPreset::None, ..SimOptions::new(3) };
    let mut world = World::new(options);
    let _ = world.take_observations();
    // Sled 4 is a spare that never held anything.
    world.rack.crash(&sled_id(4));
    world.rack.wipe(&sled_id(4));
    assert!(world.take_observations().is_empty());
    // A disk with something on it reports exactly what it held.
    let mut sim =
        Simulation::new(SimOptions { nodes: 5, faults: FaultPreset::None, ..SimOptions::new(3) });
    let held = loop {
        let e = sim.next_event();
        sim.apply(&e);
        if sim.world().rack.sleds[&sled_id(0)].disk().latest_config().is_some() {
            break sim.world().rack.sleds[&sled_id(0)].disk().clone();
        }
    };
    let mut world = sim.into_world();
    world.rack.crash(&sled_id(0));
    world.rack.wipe(&sled_id(0));
    let observed = world.take_observations();
    assert!(matches!(
        observed.as_slice(),
        [Observation::Wiped { who, lost }] if *who == sled_id(0) && *lost == held
    ));
}

/// The world asks for past, current and future epochs: across a few swarm
/// seeds every answer an honest rack can give is given.
#[test]
fn the_world_draws_loads_that_get_every_answer() {
    let mut answers: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut by_epoch_loads = 0u64;
    for seed in 0..12 {
        let mut sim = Simulation::new(SimOptions { steps: 2000, ..SimOptions::new(seed) });
        for _ in 0..2000 {
            let e = sim.next_event();
            by_epoch_loads += u64::from(matches!(e, Event::LoadEpoch { .. }));
            sim.apply(&e);
        }
        assert!(sim.violations().is_empty(), "seed {seed}: {:?}", sim.violations());
        for (k, n) in sim.checker().load_answers() {
            *answers.entry(k).or_default() += n;
        }
    }
    assert!(by_epoch_loads > 0);
    for kind in
        ["secret", "pending", "no_committed_configurations", "not_committed", "not_available"]
    {
        assert!(answers.get(kind).is_some_and(|n| *n > 0), "no {kind} answer: {answers:?}");
    }
}
