//! Each rule tying the ledger to the sleds fires: a fault-free world, with
//! sleds' disks blanked behind the checker's back (no wipe it could know
//! of) and only the rule under test denied the excuses a lost fact would
//! give, is reported under exactly that rule's name.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
#![allow(clippy::arithmetic_side_effects)]

use std::collections::{BTreeMap, BTreeSet};

use tq_types::{BaseboardId, ConfigState, Configuration, Epoch, MemberState, TrustQuorumConfig};

use super::oracle::OraclePolicy;
use super::oracle_policy;
use super::*;
use crate::SimPolicy;
use crate::violation::Violations;
use crate::world::World;
use crate::{FaultPreset, SimOptions};

/// Excuses every lost fact for every rule but `deny`; `lost` says whether
/// the blanked sleds count as having lost their prepares.
struct AllBut {
    deny: &'static str,
    lost: bool,
}

impl Excuses for AllBut {
    fn lost_prepare(&self, _: &BaseboardId, _: Epoch) -> bool {
        self.lost
    }
    fn excuse_prepare(&mut self, rule: &'static str, _: &BaseboardId, _: Epoch) -> bool {
        rule != self.deny
    }
    fn excuse_commit(&mut self, rule: &'static str, _: &BaseboardId, _: Epoch) -> bool {
        rule != self.deny
    }
}

/// The policy of the worlds below.
const POLICY: SimPolicy = SimPolicy::FIXTURES;

/// The oracle's K and Z for [`POLICY`].
fn policy() -> OraclePolicy {
    oracle_policy(&POLICY)
}

/// A fault-free world of 8 sleds stepped until `until` holds for the
/// latest configuration.
fn world_until(until: impl Fn(&TrustQuorumConfig) -> bool) -> World {
    let options =
        SimOptions { faults: FaultPreset::None, policy: Some(POLICY), ..SimOptions::new(11) };
    let mut world = World::new(options);
    for _ in 0..20_000 {
        if world.control.latest_view().is_some_and(|v| until(&v)) {
            return world;
        }
        let e = world.next_event();
        world.apply(&e);
    }
    panic!("never reached");
}

/// Every configuration the sleds hold, by epoch.
fn configs(world: &World) -> BTreeMap<Epoch, Configuration> {
    let mut out = BTreeMap::new();
    for s in world.rack.sleds.values() {
        for (e, c) in s.disk().configs() {
            out.entry(*e).or_insert_with(|| c.clone());
        }
    }
    out
}

/// Blanks `who`'s disk without a wipe the checker could see.
fn blank(world: &mut World, who: &BaseboardId) {
    let s = world.rack.sleds.get_mut(who).unwrap();
    s.embedded.crash();
    s.embedded.wipe();
}

/// The rules broken in `world`, with excuses from `excuses`.
fn broken(
    world: &World,
    excuses: &mut AllBut,
    configs: &BTreeMap<Epoch, Configuration>,
) -> BTreeSet<String> {
    let mut rules = LedgerRules::default();
    let mut out = Violations::default();
    let mut seen = Seen { lost: excuses, configs };
    rules.check(world, &mut seen, &mut out);
    out.as_slice().iter().map(|v| v.invariant.clone()).collect()
}

fn only(rule: &str) -> BTreeSet<String> {
    BTreeSet::from([rule.to_owned()])
}

#[test]
fn a_consistent_world_breaks_nothing() {
    let world = world_until(|v| v.epoch >= Epoch(3) && v.state == ConfigState::Committed);
    let mut none = AllBut { deny: "", lost: false };
    assert_eq!(broken(&world, &mut none, &configs(&world)), BTreeSet::new());
}

#[test]
fn acked_commits_are_commits_fires() {
    let mut world = world_until(|v| v.epoch == Epoch(1) && v.state == ConfigState::Committed);
    let configs = configs(&world);
    let m = world.control.latest_view().unwrap().members.keys().next().unwrap().clone();
    blank(&mut world, &m);
    let mut excuses = AllBut { deny: ACKED_COMMITS, lost: false };
    assert_eq!(broken(&world, &mut excuses, &configs), only(ACKED_COMMITS));
}

#[test]
fn acked_prepares_are_prepares_fires() {
    let mut world = world_until(|v| {
        v.state == ConfigState::Committing
            && v.members.values().any(|d| d.state == MemberState::Prepared)
    });
    let configs = configs(&world);
    let v = world.control.latest_view().unwrap();
    let m = v.members.iter().find(|(_, d)| d.state == MemberState::Prepared).unwrap().0.clone();
    blank(&mut world, &m);
    let mut excuses = AllBut { deny: ACKED_PREPARES, lost: false };
    assert_eq!(broken(&world, &mut excuses, &configs), only(ACKED_PREPARES));
}

#[test]
fn commit_safety_fires() {
    let mut world = world_until(|v| {
        let n = v.members.len();
        v.state == ConfigState::Committing && policy().z(n).unwrap() >= 1
    });
    let configs = configs(&world);
    let v = world.control.latest_view().unwrap();
    let n = v.members.len();
    let needed = policy().quorum(n).unwrap();
    // Leave K + Z - 1 (at least K) durable preparers.
    for m in v.members.keys().take(n - needed + 1) {
        blank(&mut world, m);
    }
    let mut excuses = AllBut { deny: COMMIT_SAFETY, lost: false };
    assert_eq!(broken(&world, &mut excuses, &configs), only(COMMIT_SAFETY));
}

#[test]
fn recoverability_fires() {
    let mut world = world_until(|v| v.epoch == Epoch(1) && v.state == ConfigState::Committed);
    let configs = configs(&world);
    let v = world.control.latest_view().unwrap();
    let n = v.members.len();
    // K - 1 holders left, and no share counted as lost.
    for m in v.members.keys().take(n - policy().k(n) + 1) {
        blank(&mut world, m);
    }
    let mut excuses = AllBut { deny: RECOVERABILITY, lost: false };
    assert_eq!(broken(&world, &mut excuses, &configs), only(RECOVERABILITY));
    // With more than Z shares lost, nothing is promised.
    let mut excuses = AllBut { deny: RECOVERABILITY, lost: true };
    assert_eq!(broken(&world, &mut excuses, &configs), BTreeSet::new());
}

#[test]
fn node_configs_match_cp_fires() {
    let world = world_until(|v| v.epoch >= Epoch(2) && v.state == ConfigState::Committed);
    let mut configs = configs(&world);
    let c = configs.get_mut(&Epoch(1)).unwrap();
    c.threshold.0 += 1;
    let mut none = AllBut { deny: "", lost: false };
    assert_eq!(broken(&world, &mut none, &configs), only(NODE_CONFIGS_MATCH));
}

#[test]
fn every_ledger_rule_name_is_listed() {
    let names: BTreeSet<&str> = LedgerRules::names().collect();
    for name in [COMMIT_SAFETY, RECOVERABILITY, ACKED_PREPARES, ACKED_COMMITS, NODE_CONFIGS_MATCH] {
        assert!(names.contains(name), "{name}");
    }
    assert_eq!(names.len(), oracle::RULES.len() + WORLD_RULES.len(), "names are distinct");
}
