//! How the control plane sizes a configuration: the threshold K, the commit
//! crash tolerance Z and the membership limits (docs/protocol.md section 1).

use serde::{Deserialize, Serialize};
use tq_types::Threshold;
use tq_types::ids::{MAX_MEMBERS, MIN_MEMBERS};

/// The table giving the commit crash tolerance Z for a membership size N.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashTolerance {
    /// The table in force when the add-sleds feature shipped (omicron #9650),
    /// with which the fixtures were captured: N <= 3 gives 0, 4..=8 gives 1,
    /// 9..=16 gives 2, 17 and more give 3 ([`Policy::add_sleds_release`]).
    AddSledsRelease,
    /// The reference system's latest snapshot: N <= 4 gives 0, 5..=8 gives 1,
    /// 9..=15 gives 2, 16..=23 gives 3, 24 and more give 4. This is the
    /// default: with N = 4 it asks for K = 3 prepare acknowledgements, not
    /// all four (the reference's issue #11064).
    LatestReference,
    /// The same Z for every size.
    Fixed(u8),
}

impl CrashTolerance {
    fn table(&self, members: usize) -> u8 {
        match self {
            CrashTolerance::AddSledsRelease => match members {
                0..=3 => 0,
                4..=8 => 1,
                9..=16 => 2,
                _ => 3,
            },
            CrashTolerance::LatestReference => match members {
                0..=4 => 0,
                5..=8 => 1,
                9..=15 => 2,
                16..=23 => 3,
                _ => 4,
            },
            CrashTolerance::Fixed(z) => *z,
        }
    }
}

/// How the threshold K follows from the membership size N.
///
/// Every rule keeps K in its valid range, from the smallest strict majority
/// `floor(N/2) + 1` to `N - 1` (docs/protocol.md section 1): a majority so
/// that no two disjoint groups of sleds, and no minority, can rebuild the
/// secret; below N because nodes refuse K = N, which could not survive the
/// loss of a single share.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThresholdRule {
    /// K = floor(N/2) + 1, the smallest strict majority. The default.
    #[default]
    Majority,
    /// K = floor(N/2) + 1 + the given number, capped at N - 1.
    MajorityPlus(u8),
}

impl ThresholdRule {
    /// K for `members` members (at least 3).
    fn k(self, members: u8) -> Option<u8> {
        let majority = members.checked_div(2)?.checked_add(1)?;
        let below_n = members.checked_sub(1)?;
        match self {
            ThresholdRule::Majority => Some(majority),
            ThresholdRule::MajorityPlus(extra) => Some(majority.saturating_add(extra).min(below_n)),
        }
    }
}

/// K and Z as functions of the membership size N, and the allowed sizes.
///
/// K comes from a [`ThresholdRule`] (by default the smallest majority,
/// `floor(N/2) + 1`). Z comes from a [`CrashTolerance`] table and is capped
/// at `N - K`, so that `K + Z` prepare acknowledgements are always
/// reachable.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Policy {
    /// Absent in a policy stored before the rule existed: the majority.
    #[serde(default)]
    threshold: ThresholdRule,
    crash_tolerance: CrashTolerance,
    min_members: usize,
    max_members: usize,
}

impl Default for Policy {
    /// The smallest majority, the reference's latest Z table and sizes
    /// 3..=32: N = 4 gives K = 3, Z = 0.
    fn default() -> Self {
        Policy::new(CrashTolerance::LatestReference)
    }
}

impl Policy {
    /// A policy with the given Z table, K the smallest majority, and the
    /// protocol's size limits 3..=32.
    pub fn new(crash_tolerance: CrashTolerance) -> Self {
        Policy {
            threshold: ThresholdRule::Majority,
            crash_tolerance,
            min_members: MIN_MEMBERS,
            max_members: MAX_MEMBERS,
        }
    }

    /// The reference system's latest table (see
    /// [`CrashTolerance::LatestReference`]); the same as the default.
    pub fn latest_reference() -> Self {
        Policy::new(CrashTolerance::LatestReference)
    }

    /// The table of the add-sleds release (see
    /// [`CrashTolerance::AddSledsRelease`]), with which the fixtures were
    /// captured: N = 4 gives K = 3, Z = 1.
    pub fn add_sleds_release() -> Self {
        Policy::new(CrashTolerance::AddSledsRelease)
    }

    /// The same policy with K from `rule`.
    #[must_use]
    pub fn with_threshold(mut self, rule: ThresholdRule) -> Self {
        self.threshold = rule;
        self
    }

    /// The rule K comes from.
    pub fn threshold_rule(&self) -> ThresholdRule {
        self.threshold
    }

    /// Narrows the allowed membership sizes. Limits outside the protocol's
    /// 3..=32 are clamped into it (nodes refuse anything else).
    #[must_use]
    pub fn with_size_limits(mut self, min_members: usize, max_members: usize) -> Self {
        self.min_members = min_members.clamp(MIN_MEMBERS, MAX_MEMBERS);
        self.max_members = max_members.clamp(self.min_members, MAX_MEMBERS);
        self
    }

    /// The Z table.
    pub fn crash_tolerance_table(&self) -> &CrashTolerance {
        &self.crash_tolerance
    }

    /// The smallest allowed membership.
    pub fn min_members(&self) -> usize {
        self.min_members
    }

    /// The largest allowed membership.
    pub fn max_members(&self) -> usize {
        self.max_members
    }

    /// Whether a membership of `members` is allowed.
    pub fn size_allowed(&self, members: usize) -> bool {
        (self.min_members..=self.max_members).contains(&members)
    }

    /// The threshold K for `members` members, or `None` if the size is not
    /// allowed.
    pub fn threshold(&self, members: usize) -> Option<Threshold> {
        if !self.size_allowed(members) {
            return None;
        }
        self.threshold.k(u8::try_from(members).ok()?).map(Threshold)
    }

    /// The commit crash tolerance Z for `members` members (capped at
    /// `N - K`), or `None` if the size is not allowed.
    pub fn crash_tolerance(&self, members: usize) -> Option<u8> {
        let k = self.threshold(members)?;
        let headroom = u8::try_from(members).ok()?.checked_sub(k.0)?;
        Some(self.crash_tolerance.table(members).min(headroom))
    }
}

/// The number of prepare (or commit) acknowledgements a configuration with
/// threshold `k` and crash tolerance `z` needs: `K + Z`.
pub(crate) fn required_acks(k: Threshold, z: u8) -> usize {
    usize::from(k.0).saturating_add(usize::from(z))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::arithmetic_side_effects)]

    use super::*;

    #[test]
    fn add_sleds_release_table_matches_the_fixtures_and_protocol() {
        let p = Policy::add_sleds_release();
        let expect = [
            (3, 2, 0),
            (4, 3, 1),
            (5, 3, 1),
            (8, 5, 1),
            (9, 5, 2),
            (16, 9, 2),
            (17, 9, 3),
            (32, 17, 3),
        ];
        for (n, k, z) in expect {
            assert_eq!(p.threshold(n), Some(Threshold(k)), "K for N={n}");
            assert_eq!(p.crash_tolerance(n), Some(z), "Z for N={n}");
        }
        assert_eq!(p.threshold(2), None);
        assert_eq!(p.threshold(33), None);
        assert_eq!(p.crash_tolerance(33), None);
    }

    #[test]
    fn latest_reference_table_is_the_default() {
        assert_eq!(Policy::default(), Policy::latest_reference());
        assert_eq!(Policy::default().threshold(4), Some(Threshold(3)));
        let p = Policy::latest_reference();
        let expect =
            [(3, 0), (4, 0), (5, 1), (8, 1), (9, 2), (15, 2), (16, 3), (23, 3), (24, 4), (32, 4)];
        for (n, z) in expect {
            assert_eq!(p.crash_tolerance(n), Some(z), "Z for N={n}");
        }
    }

    #[test]
    fn z_is_capped_so_acks_are_reachable() {
        let p = Policy::new(CrashTolerance::Fixed(200));
        for n in 3..=32 {
            let k = p.threshold(n).unwrap();
            let z = p.crash_tolerance(n).unwrap();
            assert!(required_acks(k, z) <= n);
            assert!(k.0 >= 2 && usize::from(k.0) < n);
        }
    }

    #[test]
    fn threshold_rules_stay_between_a_majority_and_n_minus_one() {
        for extra in 0..=40u8 {
            let p = Policy::default().with_threshold(ThresholdRule::MajorityPlus(extra));
            for n in 3..=32usize {
                let k = usize::from(p.threshold(n).unwrap().0);
                let expected = (n / 2 + 1 + usize::from(extra)).min(n - 1);
                assert_eq!(k, expected, "N={n} extra={extra}");
                assert!(2 * k > n && k < n, "N={n} K={k}");
                let z = usize::from(p.crash_tolerance(n).unwrap());
                assert!(k + z <= n);
            }
        }
        let majority = Policy::default();
        assert_eq!(majority.threshold_rule(), ThresholdRule::Majority);
        for n in 3..=32usize {
            let plus0 = majority.clone().with_threshold(ThresholdRule::MajorityPlus(0));
            assert_eq!(majority.threshold(n), plus0.threshold(n));
        }
    }

    #[test]
    fn a_policy_stored_without_a_threshold_rule_reads_as_majority() {
        let json = r#"{"crash_tolerance":"add_sleds_release","min_members":3,"max_members":32}"#;
        let p: Policy = serde_json::from_str(json).unwrap();
        assert_eq!(p, Policy::add_sleds_release());
    }

    #[test]
    fn size_limits_clamp() {
        let p = Policy::default().with_size_limits(1, 100);
        assert_eq!((p.min_members(), p.max_members()), (3, 32));
        let p = Policy::default().with_size_limits(5, 4);
        assert_eq!((p.min_members(), p.max_members()), (5, 5));
        assert!(!p.size_allowed(4));
    }
}
