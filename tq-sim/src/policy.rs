//! The control-plane policy of one run, as plain data: how K follows from
//! the membership size and which table Z comes from. Unless the options
//! name one, it is drawn from the seed on a stream of its own, so that the
//! other draws of a seed stay as they were (docs/architecture.md section 4).
//!
//! The simulator turns it into the product's `Policy` for its replicas
//! (`control/store.rs`) and, separately, into the ledger oracle's own
//! policy (`ledger_rules.rs`), which computes K and Z without the product.

use core::fmt;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::random::{below, subseed};

/// How K follows from the membership size N.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KRule {
    /// K = floor(N/2) + 1.
    Majority,
    /// K = floor(N/2) + 1 + the given number, at most N - 1.
    MajorityPlus(u8),
}

/// The table Z comes from (docs/protocol.md section 1).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZTableChoice {
    /// The add-sleds release's table, with which the fixtures were captured.
    AddSledsRelease,
    /// The reference's latest table, the product's default.
    LatestReference,
    /// The same Z for every size (capped at N - K).
    Fixed(u8),
}

/// A run's control-plane policy.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SimPolicy {
    /// Where K comes from.
    pub threshold: KRule,
    /// Where Z comes from.
    pub z_table: ZTableChoice,
}

impl SimPolicy {
    /// The policy of the fixtures and the demo: K the smallest majority, Z
    /// from the add-sleds release's table.
    pub const FIXTURES: SimPolicy =
        SimPolicy { threshold: KRule::Majority, z_table: ZTableChoice::AddSledsRelease };

    /// The product's default policy: K the smallest majority, Z from the
    /// reference's latest table.
    pub const PRODUCT_DEFAULT: SimPolicy =
        SimPolicy { threshold: KRule::Majority, z_table: ZTableChoice::LatestReference };

    /// The policy drawn for `seed` in a rack of `nodes` sleds, from the
    /// seed's own `policy` stream. K may be anything from the smallest
    /// majority to N - 1 for the largest membership the rack can have (and
    /// is capped at N - 1 for smaller ones); Z's table is one of the two
    /// reference tables or a fixed 0 to 3, each equally likely.
    pub fn draw(seed: u64, nodes: usize) -> SimPolicy {
        let mut rng = ChaCha20Rng::seed_from_u64(subseed(seed, "policy", 0));
        let majority = (nodes / 2).saturating_add(1);
        let most_extra = nodes.saturating_sub(1).saturating_sub(majority);
        let extra = below(&mut rng, most_extra.saturating_add(1));
        let threshold = match u8::try_from(extra) {
            Ok(0) | Err(_) => KRule::Majority,
            Ok(extra) => KRule::MajorityPlus(extra),
        };
        let z_table = match below(&mut rng, 6) {
            0 => ZTableChoice::AddSledsRelease,
            1 => ZTableChoice::LatestReference,
            n => ZTableChoice::Fixed(u8::try_from(n.saturating_sub(2)).unwrap_or(0)),
        };
        SimPolicy { threshold, z_table }
    }
}

impl fmt::Display for SimPolicy {
    /// `k=majority z=latest_reference`, `k=majority+2 z=fixed:1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.threshold {
            KRule::Majority => write!(f, "k=majority")?,
            KRule::MajorityPlus(d) => write!(f, "k=majority+{d}")?,
        }
        match self.z_table {
            ZTableChoice::AddSledsRelease => write!(f, " z=add_sleds_release"),
            ZTableChoice::LatestReference => write!(f, " z=latest_reference"),
            ZTableChoice::Fixed(z) => write!(f, " z=fixed:{z}"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::arithmetic_side_effects)]

    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn draws_cover_every_k_and_every_table() {
        for nodes in [3usize, 4, 8, 16, 32] {
            let drawn: Vec<SimPolicy> = (0..600).map(|s| SimPolicy::draw(s, nodes)).collect();
            let extras: BTreeSet<u8> = drawn
                .iter()
                .map(|p| match p.threshold {
                    KRule::Majority => 0,
                    KRule::MajorityPlus(d) => d,
                })
                .collect();
            let most = nodes - 1 - (nodes / 2 + 1);
            assert_eq!(extras, (0..=most as u8).collect(), "nodes = {nodes}");
            let tables: BTreeSet<String> =
                drawn.iter().map(|p| format!("{:?}", p.z_table)).collect();
            assert_eq!(tables.len(), 6, "nodes = {nodes}: {tables:?}");
        }
        assert_eq!(
            SimPolicy::draw(7, 8),
            SimPolicy::draw(7, 8),
            "a draw is a function of the seed"
        );
    }

    #[test]
    fn display_names_both_parts() {
        assert_eq!(SimPolicy::FIXTURES.to_string(), "k=majority z=add_sleds_release");
        let p = SimPolicy { threshold: KRule::MajorityPlus(2), z_table: ZTableChoice::Fixed(1) };
        assert_eq!(p.to_string(), "k=majority+2 z=fixed:1");
    }
}
