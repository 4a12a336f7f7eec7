//! Each rule of the ledger oracle fires: a real stored ledger, changed in
//! one place so that it breaks exactly that rule, is reported under exactly
//! that rule's name.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
#![allow(clippy::arithmetic_side_effects)]

use std::collections::BTreeSet;

use tq_types::{BaseboardId, ConfigState, Epoch, MemberState, Timestamp};

use super::oracle::*;
use crate::{FaultPreset, SimOptions, SimPolicy, Simulation};

/// The policy of the sample runs: the smallest majority and the add-sleds
/// release's table, under which every size from 4 up has Z >= 1.
const SAMPLE_POLICY: OraclePolicy =
    OraclePolicy { z_table: ZTable::AddSledsRelease, ..OraclePolicy::DEFAULT };

/// The stored ledger after 2,000 swarm events of `seed`.
fn ledger_of(seed: u64) -> LedgerImage {
    let options = SimOptions {
        faults: FaultPreset::Swarm,
        policy: Some(SimPolicy::FIXTURES),
        ..SimOptions::new(seed)
    };
    assert_eq!(super::oracle_policy(&SimPolicy::FIXTURES), SAMPLE_POLICY);
    let mut sim = Simulation::new(options);
    for _ in 0..2000 {
        let e = sim.next_event();
        sim.apply(&e);
    }
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    LedgerImage::of(sim.world().control.ledger()).unwrap()
}

/// The first swarm seed whose fault phase ends with a committing latest
/// configuration, a pending activation, and partially committed and
/// retried configurations: a sample of every kind of record.
fn sample() -> LedgerImage {
    let rich = |l: &LedgerImage| {
        l.configs.values().any(|r| r.state == ConfigState::CommittedPartially)
            && l.configs.values().any(|r| r.attempt > 1)
            && l.activations.values().any(|a| a.time_activated.is_none())
            && l.configs.values().any(|r| r.state == ConfigState::Committed)
            && l.configs.values().last().is_some_and(|r| r.state == ConfigState::Committing)
    };
    let l = (0..200).map(ledger_of).find(rich).expect("a rich sample");
    assert_eq!(check_ledger(&l, &SAMPLE_POLICY), Vec::new(), "the sample passes");
    l
}

/// The names of the rules `l` breaks.
fn broken(l: &LedgerImage) -> BTreeSet<&'static str> {
    check_ledger(l, &SAMPLE_POLICY).iter().map(|f| f.rule).collect()
}

fn only(rule: &'static str) -> BTreeSet<&'static str> {
    BTreeSet::from([rule])
}

fn epochs_where(l: &LedgerImage, f: impl Fn(&RecordImage) -> bool) -> Vec<Epoch> {
    l.configs.iter().filter(|(_, r)| f(r)).map(|(e, _)| *e).collect()
}

fn later(t: Timestamp) -> Timestamp {
    Timestamp::from_unix_micros(t.unix_micros() + 1_000).unwrap()
}

#[test]
fn the_k_and_z_tables_are_the_documented_ones() {
    let p = SAMPLE_POLICY;
    let expect = [(3, 2, 0), (4, 3, 1), (5, 3, 1), (8, 5, 1), (9, 5, 2), (15, 8, 2), (16, 9, 2)];
    for (n, k, z) in expect.into_iter().chain([(17, 9, 3), (23, 12, 3), (24, 13, 3), (32, 17, 3)]) {
        assert_eq!((p.k(n), p.z(n)), (k, Some(z)), "N = {n}");
    }
    // The default is the reference's latest table.
    let latest = OraclePolicy::DEFAULT;
    assert_eq!(latest.z_table, ZTable::LatestReference);
    for (n, z) in
        [(3, 0), (4, 0), (5, 1), (8, 1), (9, 2), (15, 2), (16, 3), (23, 3), (24, 4), (32, 4)]
    {
        assert_eq!(latest.z(n), Some(z), "N = {n}");
    }
    let fixed = OraclePolicy { z_table: ZTable::Fixed(200), ..p };
    assert_eq!(fixed.quorum(3), Some(3), "Z is capped at N - K");
    assert_eq!(p.z(33), None);
    // K above the smallest majority, never N or more; Z capped below it.
    let plus2 = OraclePolicy { k_rule: KFromN::MajorityPlus(2), ..p };
    for (n, k, z) in
        [(3, 2, 0), (4, 3, 1), (5, 4, 1), (8, 7, 1), (9, 7, 2), (17, 11, 3), (32, 19, 3)]
    {
        assert_eq!((plus2.k(n), plus2.z(n)), (k, Some(z)), "N = {n}");
    }
    let most = OraclePolicy { k_rule: KFromN::MajorityPlus(200), ..p };
    for n in 3..=32 {
        assert_eq!(most.k(n), n - 1, "N = {n}");
        assert!(most.quorum(n).unwrap() <= n, "N = {n}");
    }
}

#[test]
fn an_unreadable_ledger_is_reported() {
    let image = LedgerImage::of(&serde_json::json!({ "generation": 1, "configs": {} }));
    assert!(image.is_err());
}

#[test]
fn ledger_epochs_fires() {
    let mut l = sample();
    l.rack_id = None;
    assert_eq!(broken(&l), only(EPOCHS));
    // A terminal record that claims to be preparing while not the latest.
    let mut l = sample();
    let e = epochs_where(&l, |r| r.state == ConfigState::Aborted)[0];
    let r = l.configs.get_mut(&e).unwrap();
    r.state = ConfigState::Preparing;
    r.time_aborted = None;
    r.abort_reason = None;
    assert!(broken(&l).contains(EPOCHS), "{:?}", broken(&l));
}

#[test]
fn ledger_sizes_fires_on_a_wrong_k_or_z() {
    let mut l = sample();
    let e = l.latest().unwrap();
    l.configs.get_mut(&e).unwrap().threshold += 1;
    assert_eq!(broken(&l), only(SIZES), "K one too high, though K + Z acks may still be there");
    // The sample under a policy asking for a higher K.
    let l = sample();
    let higher = OraclePolicy { k_rule: KFromN::MajorityPlus(1), ..SAMPLE_POLICY };
    let rules: BTreeSet<_> = check_ledger(&l, &higher).iter().map(|f| f.rule).collect();
    assert!(rules.contains(SIZES), "{rules:?}");
    let mut l = sample();
    let r = l.configs.get_mut(&e).unwrap();
    r.commit_crash_tolerance = r.commit_crash_tolerance.saturating_sub(1).max(1) + 1;
    assert_eq!(broken(&l), only(SIZES));
}

#[test]
fn ledger_quorum_fires_on_a_commit_below_k_plus_z() {
    // The latest configuration committing with K acknowledgements only (the
    // planted CommitAtThreshold): its own K and Z still read as valid.
    let mut l = sample();
    let e = l.latest().unwrap();
    let r = l.configs.get_mut(&e).unwrap();
    let n = r.members.len();
    let k = SAMPLE_POLICY.k(n);
    assert!(SAMPLE_POLICY.quorum(n).unwrap() > k);
    let mut acked = r.members.values().filter(|d| d.state != MemberState::Unacked).count();
    for state in [MemberState::Prepared, MemberState::Committed] {
        for (m, d) in r.members.iter_mut() {
            if acked > k && d.state == state && m != &r.coordinator {
                d.state = MemberState::Unacked;
                d.time_prepared = None;
                d.time_committed = None;
                acked -= 1;
                // An activation tied to the commit taken back goes with it.
                if l.activations.get(m).is_some_and(|a| a.epoch == e) {
                    l.activations.remove(m);
                    l.active.insert(m.clone());
                }
            }
        }
    }
    assert_eq!(acked, k, "enough prepared members to drop");
    assert_eq!(broken(&l), only(QUORUM));
}

#[test]
fn ledger_member_states_fires() {
    let mut l = sample();
    let e = epochs_where(&l, |r| r.members.values().any(|d| d.state == MemberState::Prepared))[0];
    let d = l
        .configs
        .get_mut(&e)
        .unwrap()
        .members
        .values_mut()
        .find(|d| d.state == MemberState::Prepared)
        .unwrap();
    d.time_prepared = None;
    assert_eq!(broken(&l), only(MEMBER_STATES));
}

#[test]
fn ledger_states_fires() {
    let mut l = sample();
    let e = epochs_where(&l, |r| r.state == ConfigState::Committed)[0];
    let r = l.configs.get_mut(&e).unwrap();
    r.time_committed = r.time_committed.map(later);
    assert_eq!(broken(&l), only(STATES), "committed later than its last member");
}

#[test]
fn ledger_retries_fires() {
    let mut l = sample();
    let e = epochs_where(&l, |r| r.attempt == 1 && r.state == ConfigState::Committed)[0];
    l.configs.get_mut(&e).unwrap().attempt = 2;
    assert_eq!(broken(&l), only(RETRIES), "a second attempt of nothing");
}

#[test]
fn ledger_activations_fires() {
    let mut l = sample();
    let (sled, a) = l.activations.iter_mut().find(|(_, a)| a.time_activated.is_some()).unwrap();
    a.time_activated = None;
    let sled = sled.clone();
    assert!(l.active.contains(&sled));
    assert_eq!(broken(&l), only(ACTIVATIONS), "awaiting activation yet in service");
}

#[test]
fn coordinator_rules_fire() {
    // Not a member at all.
    let mut l = sample();
    let e = l.latest().unwrap();
    let outsider: BaseboardId = "PPP-PPPPPPP:00000000099".parse().unwrap();
    l.configs.get_mut(&e).unwrap().coordinator = outsider;
    assert_eq!(broken(&l), only(COORDINATOR_IS_MEMBER));

    // A member that did not commit the base.
    let mut l = sample();
    let (e, m) =
        l.configs
            .iter()
            .find_map(|(e, r)| {
                let base = l.configs.get(&r.last_committed_epoch?)?;
                let m = r.members.keys().find(|m| {
                    base.members.get(*m).is_none_or(|d| d.state != MemberState::Committed)
                })?;
                Some((*e, m.clone()))
            })
            .unwrap();
    l.configs.get_mut(&e).unwrap().coordinator = m;
    assert_eq!(broken(&l), only(COORDINATOR_COMMITTED_LAST));

    // A coordinator that failed since the base, while others were free.
    let mut l = sample();
    let (e, failed) = l
        .configs
        .iter()
        .find_map(|(e, r)| {
            let b = r.last_committed_epoch?;
            let base = l.configs.get(&b)?;
            let candidate = |m: &BaseboardId| {
                r.members.contains_key(m)
                    && base.members.get(m).is_some_and(|d| d.state == MemberState::Committed)
            };
            let failed: Vec<&BaseboardId> = l
                .configs
                .range(Epoch(b.0 + 1)..*e)
                .filter(|(_, x)| x.state == ConfigState::Aborted)
                .map(|(_, x)| &x.coordinator)
                .collect();
            let f = failed.iter().find(|f| candidate(f) && **f != &r.coordinator)?;
            let others = r.members.keys().any(|m| candidate(m) && !failed.contains(&m));
            others.then(|| (*e, (*f).clone()))
        })
        .unwrap();
    l.configs.get_mut(&e).unwrap().coordinator = failed;
    assert_eq!(broken(&l), only(COORDINATOR_CHOICE));
}

#[test]
fn ledger_forward_only_fires() {
    let old = sample();
    assert_eq!(check_transition(&old, &old), Vec::new());
    // A committed configuration going back to committing.
    let mut new = old.clone();
    new.generation += 1;
    let e = epochs_where(&new, |r| r.state == ConfigState::Committed)[0];
    new.configs.get_mut(&e).unwrap().state = ConfigState::Committing;
    let rules: BTreeSet<_> = check_transition(&old, &new).iter().map(|f| f.rule).collect();
    assert_eq!(rules, only(FORWARD_ONLY));
    // A change without a new generation.
    let mut new = old.clone();
    new.active.clear();
    let rules: BTreeSet<_> = check_transition(&old, &new).iter().map(|f| f.rule).collect();
    assert_eq!(rules, only(FORWARD_ONLY));
    // A digest replaced.
    let mut new = old.clone();
    new.generation += 1;
    let d = new
        .configs
        .values_mut()
        .flat_map(|r| r.members.values_mut())
        .find(|d| d.share_digest.is_some())
        .unwrap();
    d.share_digest = Some(tq_types::ShareDigest([7; 32]));
    let rules: BTreeSet<_> = check_transition(&old, &new).iter().map(|f| f.rule).collect();
    assert_eq!(rules, only(FORWARD_ONLY));
}

#[test]
fn coordinator_choice_fires_for_a_coordinator_out_of_service() {
    // The sample's latest record, as if just proposed on `old`.
    let new = sample();
    let (&e, r) = new.configs.iter().next_back().unwrap();
    let mut old = new.clone();
    old.configs.remove(&e);
    old.generation -= 1;
    // Another sled the failed-coordinator rule allows: it committed the
    // base and coordinated no attempt aborted since.
    let base = &new.configs[&r.last_committed_epoch.unwrap()];
    let failed: Vec<&BaseboardId> = new
        .configs
        .range(Epoch(r.last_committed_epoch.unwrap().0 + 1)..e)
        .filter(|(_, x)| x.state == ConfigState::Aborted)
        .map(|(_, x)| &x.coordinator)
        .collect();
    let other = r
        .members
        .keys()
        .find(|m| {
            **m != r.coordinator
                && !failed.contains(m)
                && base.members.get(*m).is_some_and(|d| d.state == MemberState::Committed)
        })
        .unwrap()
        .clone();
    let rules = |old: &LedgerImage| -> BTreeSet<&'static str> {
        check_transition(old, &new).iter().map(|f| f.rule).collect()
    };
    // Its coordinator in service: fine.
    old.active = BTreeSet::from([r.coordinator.clone(), other.clone()]);
    assert_eq!(rules(&old), BTreeSet::new());
    // Nobody allowed in service: any allowed sled will do.
    old.active.clear();
    assert_eq!(rules(&old), BTreeSet::new());
    // Another allowed sled in service, the coordinator not.
    old.active = BTreeSet::from([other]);
    assert_eq!(rules(&old), only(COORDINATOR_CHOICE));
}
