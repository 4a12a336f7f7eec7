//! An oracle for the control plane's ledger that shares no code with it.
//!
//! It reads the ledger in its stored form (the JSON an embedder keeps, see
//! docs/protocol.md section 5.1) into images of its own, and checks every
//! record against the rules of docs/protocol.md sections 1 and 5, computing
//! K, Z and K + Z from the membership and the run's policy, given as plain
//! data ([`OraclePolicy`]: which threshold rule, which table), with its own
//! few lines. Nothing here calls `Ledger::validate`, `Policy` or
//! `required_acks`: a wrong count shared by the control plane and its own
//! guard shows up here.
//!
//! The file imports nothing from the crate it is compiled in, so that
//! `trust-quorum/tests/control_proptest.rs` can include the very same oracle
//! with `#[path]`; `tq_sim::fuzzing`'s `control_plane_ops` and the simulator's
//! `LedgerRules` use it too.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use tq_types::membership::serde_member_map;
use tq_types::{
    BaseboardId, ConfigState, EncryptedRackSecrets, Epoch, RackId, Timestamp, TrustQuorumMemberData,
};

mod history;
mod records;

pub(crate) use history::check_transition;

/// The stored ledger cannot be read as the oracle expects.
pub(crate) const UNREADABLE: &str = "ledger_unreadable";
/// Rack id, sequential epochs, one active configuration (the latest), each
/// record built on the newest committing or committed one before it, and a
/// partially committed one followed by the configuration that made it so.
pub(crate) const EPOCHS: &str = "ledger_epochs";
/// N within the policy's sizes, K from the policy's rule, Z = min(table(N), N - K).
pub(crate) const SIZES: &str = "ledger_sizes";
/// Committing: at least K + Z acknowledged and not all committed; Committed:
/// all committed; CommittedPartially: at least K + Z committed.
pub(crate) const QUORUM: &str = "ledger_quorum";
/// A member's state agrees with its digest and timestamps.
pub(crate) const MEMBER_STATES: &str = "ledger_member_states";
/// A configuration's state agrees with its timestamps, abort reason,
/// digests and sealed secrets.
pub(crate) const STATES: &str = "ledger_states";
/// Attempts: 1 for an operator's change, one more for each automatic retry
/// of an attempt aborted for a retryable reason, with the same members, up
/// to the maximum.
pub(crate) const RETRIES: &str = "ledger_retries";
/// Activation records: one for every newcomer that committed, tied to its
/// commit, and a sled in service exactly when it is not awaiting activation.
pub(crate) const ACTIVATIONS: &str = "ledger_activations";
/// The coordinator is a member.
pub(crate) const COORDINATOR_IS_MEMBER: &str = "coordinator_is_member";
/// The coordinator committed the configuration its configuration builds on.
pub(crate) const COORDINATOR_COMMITTED_LAST: &str = "coordinator_committed_last";
/// The coordinator avoids those of the attempts aborted since the base:
/// all of them if that leaves anyone, else the most recent one; and among
/// the sleds that leaves, a new record's coordinator was in service when it
/// was proposed if any of them was.
pub(crate) const COORDINATOR_CHOICE: &str = "coordinator_choice";
/// From one stored ledger to the next: states only move forward, what is
/// recorded is never changed or removed, and every change has a new
/// generation.
pub(crate) const FORWARD_ONLY: &str = "ledger_forward_only";

/// Every rule name the oracle reports.
pub(crate) const RULES: &[&str] = &[
    UNREADABLE,
    EPOCHS,
    SIZES,
    QUORUM,
    MEMBER_STATES,
    STATES,
    RETRIES,
    ACTIVATIONS,
    COORDINATOR_IS_MEMBER,
    COORDINATOR_COMMITTED_LAST,
    COORDINATOR_CHOICE,
    FORWARD_ONLY,
];

/// One broken rule.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Finding {
    /// The rule's name, one of [`RULES`].
    pub(crate) rule: &'static str,
    /// What was seen.
    pub(crate) detail: String,
}

/// What the oracle found, in order.
#[derive(Default)]
pub(crate) struct Findings(pub(crate) Vec<Finding>);

impl Findings {
    /// Records that `rule` is broken.
    pub(crate) fn add(&mut self, rule: &'static str, detail: String) {
        self.0.push(Finding { rule, detail });
    }

    /// Records that `rule` is broken unless `ok`.
    pub(crate) fn require(
        &mut self,
        ok: bool,
        rule: &'static str,
        detail: impl FnOnce() -> String,
    ) {
        if !ok {
            self.add(rule, detail());
        }
    }
}

/// How K follows from N (docs/protocol.md section 1, "K and Z").
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum KFromN {
    /// The smallest strict majority, floor(N/2) + 1.
    Majority,
    /// floor(N/2) + 1 plus this many, but never N or more.
    MajorityPlus(u8),
}

/// The table Z comes from (docs/protocol.md section 1, "K and Z").
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ZTable {
    /// The table of the release that shipped adding sleds.
    AddSledsRelease,
    /// The reference's latest table, the default.
    LatestReference,
    /// The same Z for every size.
    Fixed(u8),
}

/// `(smallest N, largest N, Z)`, copied from the table in docs/protocol.md
/// section 1.
const ADD_SLEDS_RELEASE: [(usize, usize, usize); 7] =
    [(3, 3, 0), (4, 4, 1), (5, 8, 1), (9, 15, 2), (16, 16, 2), (17, 23, 3), (24, 32, 3)];
const LATEST_REFERENCE: [(usize, usize, usize); 7] =
    [(3, 3, 0), (4, 4, 0), (5, 8, 1), (9, 15, 2), (16, 16, 3), (17, 23, 3), (24, 32, 4)];

/// The settings of the control plane whose ledger is judged.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct OraclePolicy {
    /// Where K comes from.
    pub(crate) k_rule: KFromN,
    /// Where Z comes from.
    pub(crate) z_table: ZTable,
    /// The smallest allowed membership.
    pub(crate) min_members: usize,
    /// The largest allowed membership.
    pub(crate) max_members: usize,
    /// Attempts per change, the operator's included.
    pub(crate) max_attempts: u32,
}

impl OraclePolicy {
    /// `ControlPlaneConfig::default()` as docs/protocol.md section 1 lists
    /// it: the smallest majority, the reference's latest table, 3 to 32
    /// members, 3 attempts.
    pub(crate) const DEFAULT: OraclePolicy = OraclePolicy {
        k_rule: KFromN::Majority,
        z_table: ZTable::LatestReference,
        min_members: 3,
        max_members: 32,
        max_attempts: 3,
    };

    /// K for `n` members: the smallest majority, floor(n/2) + 1, raised by
    /// the rule's extra but kept below n.
    pub(crate) fn k(&self, n: usize) -> usize {
        let majority = (n / 2).saturating_add(1);
        match self.k_rule {
            KFromN::Majority => majority,
            KFromN::MajorityPlus(extra) => {
                majority.saturating_add(usize::from(extra)).min(n.saturating_sub(1))
            }
        }
    }

    /// Z for `n` members: the table's value, capped at N - K; `None` for a
    /// size the table does not cover.
    pub(crate) fn z(&self, n: usize) -> Option<usize> {
        let table = match self.z_table {
            ZTable::AddSledsRelease => &ADD_SLEDS_RELEASE,
            ZTable::LatestReference => &LATEST_REFERENCE,
            ZTable::Fixed(z) => return Some(usize::from(z).min(n.saturating_sub(self.k(n)))),
        };
        let (_, _, z) = table.iter().find(|(lo, hi, _)| (*lo..=*hi).contains(&n))?;
        Some((*z).min(n.saturating_sub(self.k(n))))
    }

    /// K + Z for `n` members (`None` where Z is).
    pub(crate) fn quorum(&self, n: usize) -> Option<usize> {
        self.z(n).map(|z| self.k(n).saturating_add(z))
    }
}

/// The stored ledger as the oracle reads it.
#[derive(Clone, PartialEq, Eq, Debug, Deserialize)]
pub(crate) struct LedgerImage {
    /// The change counter.
    pub(crate) generation: u64,
    /// The rack, once initialized.
    pub(crate) rack_id: Option<RackId>,
    /// Every configuration by epoch.
    pub(crate) configs: BTreeMap<Epoch, RecordImage>,
    /// The sleds in service.
    pub(crate) active: BTreeSet<BaseboardId>,
    /// Newcomers and their activation.
    #[serde(deserialize_with = "serde_member_map::deserialize")]
    pub(crate) activations: BTreeMap<BaseboardId, ActivationImage>,
}

/// One configuration record.
#[derive(Clone, PartialEq, Eq, Debug, Deserialize)]
pub(crate) struct RecordImage {
    pub(crate) last_committed_epoch: Option<Epoch>,
    pub(crate) state: ConfigState,
    pub(crate) threshold: u8,
    pub(crate) commit_crash_tolerance: u8,
    pub(crate) coordinator: BaseboardId,
    #[serde(deserialize_with = "serde_member_map::deserialize")]
    pub(crate) members: BTreeMap<BaseboardId, TrustQuorumMemberData>,
    pub(crate) encrypted_rack_secrets: Option<EncryptedRackSecrets>,
    /// Kept as stored: only whether it is an operator's matters here.
    pub(crate) abort_reason: Option<serde_json::Value>,
    pub(crate) attempt: u32,
    pub(crate) time_created: Timestamp,
    pub(crate) time_reconfigure_sent: Option<Timestamp>,
    pub(crate) time_committing: Option<Timestamp>,
    pub(crate) time_committed: Option<Timestamp>,
    pub(crate) time_aborted: Option<Timestamp>,
}

/// One activation record.
#[derive(Clone, PartialEq, Eq, Debug, Deserialize)]
pub(crate) struct ActivationImage {
    pub(crate) epoch: Epoch,
    pub(crate) time_committed: Timestamp,
    pub(crate) time_activated: Option<Timestamp>,
}

impl LedgerImage {
    /// Reads a ledger from anything that serializes to its stored form.
    pub(crate) fn of<T: serde::Serialize>(ledger: &T) -> Result<LedgerImage, String> {
        let value = serde_json::to_value(ledger).map_err(|e| e.to_string())?;
        serde_json::from_value(value).map_err(|e| e.to_string())
    }

    /// The latest epoch.
    pub(crate) fn latest(&self) -> Option<Epoch> {
        self.configs.keys().next_back().copied()
    }
}

/// Whether `state` is Committing, Committed or CommittedPartially.
pub(crate) fn committing_or_committed(state: ConfigState) -> bool {
    matches!(
        state,
        ConfigState::Committing | ConfigState::Committed | ConfigState::CommittedPartially
    )
}

/// Every rule one stored ledger breaks under `policy`.
pub(crate) fn check_ledger(ledger: &LedgerImage, policy: &OraclePolicy) -> Vec<Finding> {
    let mut out = Findings::default();
    history::epochs(ledger, &mut out);
    for (epoch, record) in &ledger.configs {
        records::record(*epoch, record, policy, &mut out);
        history::coordinator(ledger, *epoch, record, &mut out);
        history::retries(ledger, *epoch, record, policy, &mut out);
    }
    history::activations(ledger, &mut out);
    out.0
}
