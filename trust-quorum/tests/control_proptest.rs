//! Property test: random operator operations, driver passes and results
//! (including stale, duplicated, mismatched and replayed ones) never break
//! the ledger's rules (docs/protocol.md sections 5 and 7.3): epochs sequential,
//! at most one non-terminal configuration, committing never aborted, states
//! only move forward, refusals change nothing, every change bumps the
//! generation by exactly one. Besides the product's own guard
//! (`Ledger::validate`), every ledger is judged by the simulator's
//! independent ledger oracle, which computes K, Z and K + Z itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
#![allow(clippy::arithmetic_side_effects, missing_docs)]

mod control_support;

/// The simulator's ledger oracle, which shares no code with the control
/// plane (included as source: `tq-sim` depends on this crate).
#[allow(dead_code, reason = "the simulator uses more of the oracle than this test")]
#[path = "../../tq-sim/src/ledger_rules/oracle/mod.rs"]
mod oracle;

/// Named so that `cargo test control` selects these tests.
mod control {
    use crate::oracle;

    use std::collections::BTreeSet;
    use std::time::Duration;

    use crate::control_support::*;
    use proptest::collection::{btree_set, vec};
    use proptest::prelude::*;
    use test_strategy::{Arbitrary, proptest};
    use tq_types::{
        BaseboardId, CommitError, CommitStatus, ConfigState, CoordinatorStatus, Epoch, MemberState,
        RackId, ReconfigurationError, TrustQuorumConfig,
    };
    use trust_quorum::control::{
        ControlAction, ControlPlane, ControlPlaneConfig, CrashTolerance, Policy, ThresholdRule,
    };
    use trust_quorum::harness::Controller;

    const UNIVERSE: u32 = 9;

    #[derive(Debug, Clone, Arbitrary)]
    enum Op {
        #[weight(3)]
        Add(#[strategy(btree_set(0..UNIVERSE, 0..3))] BTreeSet<u32>),
        Remove(#[strategy(btree_set(0..UNIVERSE, 0..2))] BTreeSet<u32>),
        Abort,
        Initialize(#[strategy(btree_set(0..UNIVERSE, 2..5))] BTreeSet<u32>),
        /// Advance the clock by this many seconds, then run a driver pass.
        #[weight(6)]
        Tick(#[strategy(prop_oneof![8 => 0u64..10, 1 => 10u64..90])] u64),
        /// Answer every action of the last pass: mode 0 commits all, 1 some,
        /// 2 answers pending, 3 `NotPrepared`.
        #[weight(6)]
        AnswerPass(#[strategy(prop_oneof![3 => Just(0u8), 3 => Just(1u8), 1 => 2u8..4])] u8),
        ReconfigureResult {
            #[strategy(0u64..3)]
            back: u64,
            refused: bool,
        },
        Status {
            #[strategy(0u64..3)]
            back: u64,
            #[strategy(btree_set(0..UNIVERSE, 0..6))]
            acked: BTreeSet<u32>,
            not_coordinating: bool,
            #[strategy(0u8..6)]
            corrupt: u8,
            from_other: bool,
        },
        Commit {
            #[strategy(0u64..3)]
            back: u64,
            #[strategy(0..UNIVERSE)]
            member: u32,
            #[strategy(0u8..4)]
            kind: u8,
        },
        Activated(#[strategy(0..UNIVERSE)] u32),
        Unreachable(#[strategy(0..UNIVERSE)] u32),
        /// Re-deliver an earlier result (stale or duplicate).
        Replay(#[strategy(0usize..64)] usize),
    }

    #[derive(Debug, Clone)]
    enum Recorded {
        Reconfigure(Epoch, BaseboardId, Result<(), ReconfigurationError>),
        Status(Epoch, BaseboardId, Option<CoordinatorStatus>),
        Commit(Epoch, BaseboardId, Result<CommitStatus, trust_quorum::control::MemberCommitError>),
    }

    struct World {
        cp: Controller,
        now: i64,
        seed_rng: rand_chacha::ChaCha20Rng,
        last_actions: Vec<ControlAction>,
        history: Vec<Recorded>,
    }

    impl World {
        fn epoch_back(&self, back: u64) -> Epoch {
            let latest = self.cp.latest_epoch().unwrap_or(Epoch(1));
            Epoch(latest.0.saturating_sub(back).max(1))
        }

        /// Applies a recorded result; true if it was accepted.
        fn deliver(&mut self, rec: Recorded) -> bool {
            let now = t(self.now);
            let ok = match &rec {
                Recorded::Reconfigure(e, from, res) => {
                    self.cp.on_reconfigure_result(*e, from, res.clone(), now).is_ok()
                }
                Recorded::Status(e, from, st) => {
                    self.cp.on_coordinator_status(*e, from, st.clone(), now).is_ok()
                }
                Recorded::Commit(e, m, res) => {
                    self.cp.on_commit_result(*e, m, res.clone(), now).is_ok()
                }
            };
            if self.history.len() < 64 {
                self.history.push(rec);
            }
            ok
        }

        fn status_for(
            &self,
            e: Epoch,
            acked: &BTreeSet<u32>,
            corrupt: u8,
        ) -> Option<CoordinatorStatus> {
            self.cp.config(e)?;
            let mut st = fake_status(&self.cp, e, &ids(acked.iter().copied()));
            match corrupt {
                1 => {
                    if let Some((m, _)) =
                        st.config.members.iter().next().map(|(m, d)| (m.clone(), *d))
                    {
                        st.config.members.insert(m, digest(Epoch(999), &id(0)));
                    }
                }
                2 => {
                    st.config.members.insert(id(77), digest(e, &id(77)));
                }
                3 => st.config.rack_id = RackId(uuid::Uuid::nil()),
                4 => st.config.encrypted_rack_secrets = None,
                _ => {}
            }
            Some(st)
        }

        /// Runs one operation; returns whether it was refused (an error).
        fn step(&mut self, op: &Op) -> bool {
            let now = t(self.now);
            match op {
                Op::Add(s) => {
                    self.cp.add_sleds(ids(s.iter().copied()), now, &mut self.seed_rng).is_err()
                }
                Op::Remove(s) => {
                    self.cp.remove_sleds(ids(s.iter().copied()), now, &mut self.seed_rng).is_err()
                }
                Op::Abort => self.cp.abort_latest("test", now).is_err(),
                Op::Initialize(s) => self
                    .cp
                    .initialize(rack(), ids(s.iter().copied()), now, &mut self.seed_rng)
                    .is_err(),
                Op::Tick(secs) => {
                    self.now += *secs as i64;
                    self.last_actions = self.cp.tick(t(self.now), &mut self.seed_rng);
                    false
                }
                Op::AnswerPass(mode) => {
                    let actions = std::mem::take(&mut self.last_actions);
                    for (index, a) in actions.iter().enumerate() {
                        let kind = match mode {
                            1 if (index as i64 + self.now) % 3 == 0 => 2,
                            1 => 0,
                            other => *other,
                        };
                        let rec = match a {
                            ControlAction::Reconfigure { to, msg } => {
                                Recorded::Reconfigure(msg.msg.epoch, to.clone(), Ok(()))
                            }
                            ControlAction::PollCoordinator { to, epoch } => {
                                let members: BTreeSet<u32> = (0..UNIVERSE).collect();
                                let Some(st) = self.status_for(*epoch, &members, 0) else {
                                    continue;
                                };
                                let mut st = st;
                                st.acked_prepares.retain(|m| st.config.members.contains_key(m));
                                Recorded::Status(*epoch, to.clone(), Some(st))
                            }
                            ControlAction::Commit { member, req, .. } => Recorded::Commit(
                                req.epoch,
                                member.clone(),
                                commit_answer(kind, req.epoch),
                            ),
                            ControlAction::PrepareAndCommit { member, req, .. } => {
                                Recorded::Commit(
                                    req.config.epoch,
                                    member.clone(),
                                    commit_answer(kind, req.config.epoch),
                                )
                            }
                            ControlAction::Activate { member } => {
                                let _ = self.cp.on_activated(member, t(self.now));
                                continue;
                            }
                        };
                        let _ = self.deliver(rec);
                    }
                    false
                }
                Op::ReconfigureResult { back, refused } => {
                    let e = self.epoch_back(*back);
                    let Some(v) = self.cp.config(e) else { return true };
                    let res = if *refused {
                        Err(ReconfigurationError::StaleEpoch {
                            requested: e,
                            latest: Epoch(e.0 + 1),
                        })
                    } else {
                        Ok(())
                    };
                    !self.deliver(Recorded::Reconfigure(e, v.coordinator, res))
                }
                Op::Status { back, acked, not_coordinating, corrupt, from_other } => {
                    let e = self.epoch_back(*back);
                    let Some(v) = self.cp.config(e) else { return true };
                    let from = if *from_other { id(8) } else { v.coordinator };
                    let st =
                        if *not_coordinating { None } else { self.status_for(e, acked, *corrupt) };
                    !self.deliver(Recorded::Status(e, from, st))
                }
                Op::Commit { back, member, kind } => {
                    let e = self.epoch_back(*back);
                    !self.deliver(Recorded::Commit(e, id(*member), commit_answer(*kind, e)))
                }
                Op::Activated(m) => self.cp.on_activated(&id(*m), now).is_err(),
                Op::Unreachable(m) => {
                    self.cp.on_unreachable(&id(*m), now);
                    false
                }
                Op::Replay(i) => match self.history.get(*i).cloned() {
                    Some(rec) => !self.deliver(rec),
                    None => true,
                },
            }
        }
    }

    fn commit_answer(
        kind: u8,
        e: Epoch,
    ) -> Result<CommitStatus, trust_quorum::control::MemberCommitError> {
        match kind {
            0 | 1 => Ok(CommitStatus::Committed),
            2 => Ok(CommitStatus::Pending),
            _ => Err(CommitError::NotPrepared(e).into()),
        }
    }

    fn rank(s: ConfigState) -> u8 {
        match s {
            ConfigState::Preparing => 0,
            ConfigState::Committing => 1,
            ConfigState::Committed | ConfigState::CommittedPartially | ConfigState::Aborted => 2,
        }
    }

    /// Checks that `new` only moved forward from `old`.
    fn check_forward(old: &TrustQuorumConfig, new: &TrustQuorumConfig) {
        let e = old.epoch;
        assert_eq!(old.coordinator, new.coordinator, "epoch {e}: coordinator changed");
        assert_eq!(old.threshold, new.threshold);
        assert_eq!(old.commit_crash_tolerance, new.commit_crash_tolerance);
        assert_eq!(old.last_committed_epoch, new.last_committed_epoch);
        assert_eq!(old.time_created, new.time_created);
        assert!(rank(old.state) <= rank(new.state), "epoch {e}: {} -> {}", old.state, new.state);
        if old.state != new.state {
            let allowed = matches!(
                (old.state, new.state),
                (ConfigState::Preparing, ConfigState::Committing)
                    | (ConfigState::Preparing, ConfigState::Aborted)
                    | (ConfigState::Committing, ConfigState::Committed)
                    | (ConfigState::Committing, ConfigState::CommittedPartially)
            );
            assert!(allowed, "epoch {e}: forbidden transition {} -> {}", old.state, new.state);
        }
        if old.state.is_terminal() {
            assert_eq!(old, new, "epoch {e}: a terminal configuration changed");
        }
        assert_eq!(
            old.members.keys().collect::<Vec<_>>(),
            new.members.keys().collect::<Vec<_>>(),
            "epoch {e}: membership changed"
        );
        for (m, o) in &old.members {
            let n = &new.members[m];
            assert!(o.state <= n.state, "epoch {e}: {m} went {} -> {}", o.state, n.state);
            if o.share_digest.is_some() {
                assert_eq!(o.share_digest, n.share_digest, "epoch {e}: digest of {m} changed");
            }
            if o.time_prepared.is_some() {
                assert_eq!(o.time_prepared, n.time_prepared);
            }
            if o.time_committed.is_some() {
                assert_eq!(o.time_committed, n.time_committed);
            }
        }
        if old.encrypted_rack_secrets.is_some() {
            assert_eq!(old.encrypted_rack_secrets, new.encrypted_rack_secrets);
        }
    }

    fn views(cp: &ControlPlane) -> Vec<TrustQuorumConfig> {
        let Some(latest) = cp.latest_epoch() else { return Vec::new() };
        (1..=latest.0).map(|e| cp.config(Epoch(e)).expect("epochs are sequential")).collect()
    }

    /// The oracle's view of `config`: which threshold rule, Z table and
    /// limits it was configured with (the oracle computes K and Z itself).
    fn oracle_policy(config: &ControlPlaneConfig) -> oracle::OraclePolicy {
        let k_rule = match config.policy.threshold_rule() {
            ThresholdRule::Majority => oracle::KFromN::Majority,
            ThresholdRule::MajorityPlus(d) => oracle::KFromN::MajorityPlus(d),
        };
        let z_table = match config.policy.crash_tolerance_table() {
            CrashTolerance::AddSledsRelease => oracle::ZTable::AddSledsRelease,
            CrashTolerance::LatestReference => oracle::ZTable::LatestReference,
            CrashTolerance::Fixed(z) => oracle::ZTable::Fixed(*z),
        };
        oracle::OraclePolicy {
            k_rule,
            z_table,
            min_members: config.policy.min_members(),
            max_members: config.policy.max_members(),
            max_attempts: config.max_attempts,
        }
    }

    fn image(cp: &ControlPlane) -> oracle::LedgerImage {
        oracle::LedgerImage::of(cp.ledger()).expect("the oracle reads every ledger")
    }

    fn check_rules(cp: &ControlPlane) {
        // Everything docs/protocol.md sections 5 and 7.3 says about one ledger:
        // the product's guard, then the independent oracle.
        cp.ledger().validate().unwrap();
        let findings = oracle::check_ledger(&image(cp), &oracle_policy(cp.settings()));
        assert!(findings.is_empty(), "ledger oracle: {findings:#?}");
        let vs = views(cp);
        let active: Vec<_> = vs.iter().filter(|v| !v.state.is_terminal()).collect();
        assert!(active.len() <= 1, "{} non-terminal configurations", active.len());
        if let Some(a) = active.first() {
            assert_eq!(Some(a.epoch), cp.latest_epoch(), "only the latest may be non-terminal");
        }
        for v in &vs {
            assert!(v.members.contains_key(&v.coordinator));
            if v.state.is_committed_or_committing() {
                let acked = v.members.values().filter(|m| m.state != MemberState::Unacked).count();
                assert!(
                    acked >= usize::from(v.threshold.0) + usize::from(v.commit_crash_tolerance)
                );
            }
            if let Some(b) = v.last_committed_epoch {
                let base = &vs[(b.0 - 1) as usize];
                assert!(base.state.is_committed_or_committing());
                // The coordinator committed the configuration it builds on.
                assert_eq!(
                    base.members.get(&v.coordinator).map(|m| m.state),
                    Some(MemberState::Committed)
                );
            }
        }
    }

    fn run(ops: &[Op], seed: u64, config: ControlPlaneConfig) {
        let mut r = rng(seed);
        let cp = committed_rack_with(config, &ids(0..4), &mut r);
        let mut w =
            World { cp, now: 0, seed_rng: r, last_actions: Vec::new(), history: Vec::new() };
        check_rules(&w.cp);
        for op in ops {
            let before_json = ledger_json(&w.cp);
            let before_views = views(&w.cp);
            let before_gen = w.cp.ledger().generation();
            let before_image = image(&w.cp);
            let refused = w.step(op);
            let after_json = ledger_json(&w.cp);
            if refused {
                assert_eq!(before_json, after_json, "{op:?} was refused but changed the ledger");
            }
            let generation = w.cp.ledger().generation();
            if before_json == after_json {
                assert_eq!(generation, before_gen);
            } else if matches!(op, Op::AnswerPass(_)) {
                assert!(generation > before_gen);
            } else {
                // One call, one transaction (a pass may abort and retry: at most
                // two plus the reconfigure mark).
                assert!(
                    generation > before_gen && generation <= before_gen + 3,
                    "{op:?}: {before_gen} -> {generation}"
                );
            }
            check_rules(&w.cp);
            let moved = oracle::check_transition(&before_image, &image(&w.cp));
            assert!(moved.is_empty(), "{op:?}: ledger oracle: {moved:#?}");
            let after_views = views(&w.cp);
            assert!(after_views.len() >= before_views.len(), "a configuration disappeared");
            for (old, new) in before_views.iter().zip(&after_views) {
                check_forward(old, new);
            }
            // The stored ledger always reloads.
            let reloaded: trust_quorum::control::Ledger =
                serde_json::from_str(&after_json).unwrap();
            Controller::from_ledger(w.cp.settings().clone(), authority(), reloaded).unwrap();
        }
    }

    #[proptest(cases = 1000)]
    fn random_operations_keep_the_ledger_rules(
        #[strategy(vec(any::<Op>(), 1..120))] ops: Vec<Op>,
        seed: u64,
    ) {
        run(&ops, seed, ControlPlaneConfig::default());
    }

    #[proptest(cases = 500)]
    fn random_operations_with_other_policies(
        #[strategy(vec(any::<Op>(), 1..120))] ops: Vec<Op>,
        seed: u64,
        #[strategy(0u8..3)] z: u8,
        #[strategy(0u8..6)] extra: u8,
        auto_retry: bool,
    ) {
        let rule = match extra {
            0 => ThresholdRule::Majority,
            d => ThresholdRule::MajorityPlus(d),
        };
        let config = ControlPlaneConfig {
            policy: Policy::new(CrashTolerance::Fixed(z)).with_threshold(rule),
            auto_retry,
            max_attempts: 4,
            prepare_timeout: Duration::from_secs(45),
            ..Default::default()
        };
        run(&ops, seed, config);
    }

    /// Liveness under cooperative results: ticking and answering everything
    /// eventually commits any accepted change.
    #[proptest(cases = 100)]
    fn answered_changes_commit(
        #[strategy(btree_set(4..UNIVERSE, 1..4))] add: BTreeSet<u32>,
        seed: u64,
    ) {
        let mut r = rng(seed);
        let cp = committed_rack(&ids(0..4), &mut r);
        let mut w =
            World { cp, now: 0, seed_rng: r, last_actions: Vec::new(), history: Vec::new() };
        let e = w.cp.add_sleds(ids(add.iter().copied()), t(0), &mut rng(seed)).unwrap();
        for _ in 0..10 {
            w.step(&Op::Tick(1));
            w.step(&Op::AnswerPass(0));
        }
        prop_assert_eq!(state(&w.cp, e), ConfigState::Committed);
        prop_assert_eq!(w.cp.pending_activations(), BTreeSet::new(), "answered activations");
    }
}
