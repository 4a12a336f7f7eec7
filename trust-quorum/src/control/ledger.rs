//! The control plane's durable record of one rack: every configuration by
//! epoch with its state and its members' states, and the activation status
//! of newly joined sleds (docs/protocol.md section 5).
//!
//! All transitions live here, except proposing a new configuration, which
//! lives in `proposal.rs`. Each is applied by [`super::ControlPlane`] to
//! a draft copy of the ledger that replaces the real one only when the whole
//! operation succeeded, so a rejection never leaves a partial change.
//!
//! The ledger rules are in `ledger_rules.rs`, the operator's views in
//! `views.rs`.

use core::fmt;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use tq_types::membership::serde_member_map;
use tq_types::{
    BaseboardId, ConfigState, Configuration, CoordinatorStatus, EncryptedRackSecrets, Epoch,
    MemberState, RackId, ReconfigurationError, ReconfigureMsg, SignedReconfigure, Threshold,
    Timestamp, TrustQuorumMemberData,
};

use super::errors::ConfigMismatch;
use super::policy::required_acks;

/// The durable state of the control plane for one rack.
///
/// It is serde-serializable so that an embedder can store it. Its
/// [`generation`](Ledger::generation) grows by one on every change, so that
/// several control-plane replicas sharing one store can use it for
/// compare-and-set: store a new ledger only if the stored generation is still
/// the one the change started from; otherwise reload and retry.
///
/// A deserialized ledger is only trusted after
/// [`super::ControlPlane::from_ledger`] has validated it.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Ledger {
    generation: u64,
    pub(super) rack_id: Option<RackId>,
    pub(super) configs: BTreeMap<Epoch, ConfigRecord>,
    /// Sleds in service, which the control plane can address directly.
    active: BTreeSet<BaseboardId>,
    /// Sleds that joined through a later configuration, with their activation
    /// status.
    #[serde(with = "serde_member_map")]
    pub(super) activations: BTreeMap<BaseboardId, ActivationRecord>,
}

/// One configuration as the control plane records it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub(crate) struct ConfigRecord {
    pub(crate) last_committed_epoch: Option<Epoch>,
    pub(crate) state: ConfigState,
    pub(crate) threshold: Threshold,
    pub(crate) commit_crash_tolerance: u8,
    pub(crate) coordinator: BaseboardId,
    #[serde(with = "serde_member_map")]
    pub(crate) members: BTreeMap<BaseboardId, TrustQuorumMemberData>,
    pub(crate) encrypted_rack_secrets: Option<EncryptedRackSecrets>,
    pub(crate) abort_reason: Option<AbortReason>,
    /// 1 for an operator's request, one more for each automatic retry.
    pub(crate) attempt: u32,
    pub(crate) time_created: Timestamp,
    pub(crate) time_reconfigure_sent: Option<Timestamp>,
    pub(crate) time_committing: Option<Timestamp>,
    pub(crate) time_committed: Option<Timestamp>,
    pub(crate) time_aborted: Option<Timestamp>,
}

/// A newly joined sled's activation status.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub(crate) struct ActivationRecord {
    /// The configuration in which the sled committed as a new member.
    pub(crate) epoch: Epoch,
    /// When its commit was recorded.
    pub(crate) time_committed: Timestamp,
    /// When the embedder reported it in service.
    pub(crate) time_activated: Option<Timestamp>,
}

/// Why a configuration was aborted.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbortReason {
    /// An operator aborted it; never retried automatically.
    Operator {
        /// The operator's words.
        reason: String,
    },
    /// The coordinator did not answer for the prepare timeout.
    CoordinatorTimeout {
        /// The silent coordinator.
        coordinator: BaseboardId,
        /// How long it was silent, in milliseconds.
        silent_ms: u64,
    },
    /// The coordinator answered a poll saying it is not coordinating (it
    /// restarted and lost its in-memory coordination).
    CoordinatorNotCoordinating {
        /// The coordinator.
        coordinator: BaseboardId,
    },
    /// The coordinator refused the reconfiguration request.
    CoordinatorRefused {
        /// The coordinator.
        coordinator: BaseboardId,
        /// Its answer.
        error: ReconfigurationError,
    },
}

impl AbortReason {
    /// Whether the control plane may retry the same change automatically:
    /// every reason except an operator's.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, AbortReason::Operator { .. })
    }
}

impl fmt::Display for AbortReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AbortReason::Operator { reason } => write!(f, "aborted by operator: {reason}"),
            AbortReason::CoordinatorTimeout { coordinator, silent_ms } => write!(
                f,
                "coordinator {coordinator} did not answer for {silent_ms} ms; presumed dead"
            ),
            AbortReason::CoordinatorNotCoordinating { coordinator } => write!(
                f,
                "coordinator {coordinator} reports it is not coordinating (it restarted or \
                 never received the request)"
            ),
            AbortReason::CoordinatorRefused { coordinator, error } => {
                write!(f, "coordinator {coordinator} refused the reconfiguration: {error}")
            }
        }
    }
}

impl Ledger {
    /// Every recorded epoch, oldest first.
    pub(crate) fn epochs(&self) -> impl Iterator<Item = Epoch> + '_ {
        self.configs.keys().copied()
    }

    /// The change counter, for compare-and-set by an embedder.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The rack, once initialized.
    pub fn rack_id(&self) -> Option<RackId> {
        self.rack_id
    }

    pub(crate) fn bump_generation(&mut self) {
        // Equality is all compare-and-set needs; wrapping after 2^64 changes
        // is harmless.
        self.generation = self.generation.wrapping_add(1);
    }

    pub(crate) fn set_rack_id(&mut self, rack_id: RackId) {
        self.rack_id = Some(rack_id);
    }

    pub(crate) fn record(&self, epoch: Epoch) -> Option<&ConfigRecord> {
        self.configs.get(&epoch)
    }

    pub(crate) fn record_mut(&mut self, epoch: Epoch) -> Option<&mut ConfigRecord> {
        self.configs.get_mut(&epoch)
    }

    /// The latest configuration, whatever its state.
    pub(crate) fn latest(&self) -> Option<(Epoch, &ConfigRecord)> {
        self.configs.iter().next_back().map(|(e, r)| (*e, r))
    }

    /// The newest committing, committed or committed-partially
    /// configuration: the one whose membership is the rack's.
    pub(crate) fn base(&self) -> Option<(Epoch, &ConfigRecord)> {
        self.configs
            .iter()
            .rev()
            .find(|(_, r)| r.state.is_committed_or_committing())
            .map(|(e, r)| (*e, r))
    }

    pub(crate) fn is_active(&self, sled: &BaseboardId) -> bool {
        self.active.contains(sled)
    }

    /// Sleds that committed as new members and still await activation,
    /// limited to the rack's current membership.
    pub(crate) fn pending_activations(&self) -> BTreeSet<BaseboardId> {
        let Some((_, base)) = self.base() else {
            return BTreeSet::new();
        };
        self.activations
            .iter()
            .filter(|(sled, act)| act.time_activated.is_none() && base.members.contains_key(*sled))
            .map(|(sled, _)| sled.clone())
            .collect()
    }

    /// Aborts the latest configuration if it is preparing. Returns the
    /// latest epoch and its state before the call; an already aborted latest
    /// configuration is left as it is.
    pub(crate) fn abort_latest(
        &mut self,
        reason: AbortReason,
        now: Timestamp,
    ) -> Option<(Epoch, ConfigState)> {
        let (&epoch, rec) = self.configs.iter_mut().next_back()?;
        let before = rec.state;
        if before == ConfigState::Preparing {
            rec.state = ConfigState::Aborted;
            rec.abort_reason = Some(reason);
            rec.time_aborted = Some(now);
        }
        Some((epoch, before))
    }

    /// The poll update (docs/protocol.md section 5.3) for the latest, preparing
    /// configuration `epoch`, whose coordinator sent `status`. Checks the
    /// whole status before changing anything.
    pub(crate) fn apply_coordinator_status(
        &mut self,
        epoch: Epoch,
        status: &CoordinatorStatus,
        now: Timestamp,
        commit_at_threshold: bool,
    ) -> Result<(), ConfigMismatch> {
        let rack_id = self.rack_id;
        let Some(rec) = self.configs.get_mut(&epoch) else {
            return Ok(());
        };
        let config = &status.config;
        if let Some(expected) = rack_id
            && config.rack_id != expected
        {
            return Err(ConfigMismatch::RackId { expected, got: config.rack_id });
        }
        if config.epoch != epoch {
            return Err(ConfigMismatch::Epoch { expected: epoch, got: config.epoch });
        }
        if config.coordinator != rec.coordinator {
            return Err(ConfigMismatch::Coordinator {
                expected: rec.coordinator.clone(),
                got: config.coordinator.clone(),
            });
        }
        let missing: BTreeSet<BaseboardId> =
            rec.members.keys().filter(|m| !config.members.contains_key(*m)).cloned().collect();
        let unexpected: BTreeSet<BaseboardId> =
            config.members.keys().filter(|m| !rec.members.contains_key(*m)).cloned().collect();
        if !missing.is_empty() || !unexpected.is_empty() {
            return Err(ConfigMismatch::Members { missing, unexpected });
        }
        if config.threshold != rec.threshold {
            return Err(ConfigMismatch::Threshold {
                expected: rec.threshold,
                got: config.threshold,
            });
        }
        for (member, data) in &rec.members {
            if let (Some(known), Some(reported)) = (data.share_digest, config.members.get(member))
                && known != *reported
            {
                return Err(ConfigMismatch::Digest { member: member.clone() });
            }
        }
        match (&rec.encrypted_rack_secrets, &config.encrypted_rack_secrets) {
            (Some(known), Some(reported)) if known != reported => {
                return Err(ConfigMismatch::EncryptedRackSecrets);
            }
            (Some(_), None) => return Err(ConfigMismatch::EncryptedRackSecrets),
            _ => {}
        }
        if let Some(expected) = rack_id
            && config.reconfigure.msg != rec.reconfigure_msg(expected, epoch)
        {
            return Err(ConfigMismatch::Reconfigure);
        }
        if let Some(member) = status.acked_prepares.iter().find(|m| !rec.members.contains_key(*m)) {
            return Err(ConfigMismatch::AckFromNonMember { member: member.clone() });
        }
        if !status.acked_prepares.is_empty()
            && rec.last_committed_epoch.is_some()
            && config.encrypted_rack_secrets.is_none()
        {
            return Err(ConfigMismatch::MissingEncryptedRackSecrets);
        }

        // Everything checked: apply.
        for (member, data) in rec.members.iter_mut() {
            if data.share_digest.is_none() {
                data.share_digest = config.members.get(member).copied();
            }
            if data.state == MemberState::Unacked && status.acked_prepares.contains(member) {
                data.state = MemberState::Prepared;
                data.time_prepared = Some(now);
            }
        }
        if rec.encrypted_rack_secrets.is_none() {
            rec.encrypted_rack_secrets.clone_from(&config.encrypted_rack_secrets);
        }
        let acked = rec.members.values().filter(|d| d.state != MemberState::Unacked).count();
        let initial = rec.last_committed_epoch.is_none();
        let mut members_now_active = Vec::new();
        let needed = if commit_at_threshold {
            // Planted bug (simulator self-test only): ignore Z.
            usize::from(rec.threshold.0)
        } else {
            required_acks(rec.threshold, rec.commit_crash_tolerance)
        };
        if acked >= needed {
            rec.state = ConfigState::Committing;
            rec.time_committing = Some(now);
            if initial {
                // A rack's first members are the sleds it was initialized
                // with: in service from the start.
                members_now_active.extend(rec.members.keys().cloned());
            }
        }
        self.active.extend(members_now_active);
        Ok(())
    }

    /// The commit-ack update (docs/protocol.md section 5.3) for `member` of the
    /// latest, committing configuration `epoch`. A member that committed as
    /// a newcomer (not in the configuration it builds on, or not yet in
    /// service) gets an activation record.
    pub(crate) fn record_commit_ack(&mut self, epoch: Epoch, member: &BaseboardId, now: Timestamp) {
        let Some(rec) = self.configs.get(&epoch) else {
            return;
        };
        let in_base = rec
            .last_committed_epoch
            .and_then(|b| self.configs.get(&b))
            .map(|b| b.members.contains_key(member));
        let needs_activation = match in_base {
            None => false, // initial configuration: members are in service
            Some(in_base) => !in_base || !self.active.contains(member),
        };
        let Some(rec) = self.configs.get_mut(&epoch) else {
            return;
        };
        let Some(data) = rec.members.get_mut(member) else {
            return;
        };
        if data.state == MemberState::Committed {
            return;
        }
        data.state = MemberState::Committed;
        data.time_committed = Some(now);
        if rec.members.values().all(|d| d.state == MemberState::Committed) {
            rec.state = ConfigState::Committed;
            rec.time_committed = Some(now);
        }
        if needs_activation {
            let pending = self.activations.get(member).is_some_and(|a| a.time_activated.is_none());
            if !pending {
                self.activations.insert(
                    member.clone(),
                    ActivationRecord { epoch, time_committed: now, time_activated: None },
                );
            }
            self.active.remove(member);
        }
    }

    /// Records that `sled` is in service: `Some(true)` if this changed
    /// anything, `None` if the sled has no activation record.
    pub(crate) fn record_activated(&mut self, sled: &BaseboardId, now: Timestamp) -> Option<bool> {
        let act = self.activations.get_mut(sled)?;
        if act.time_activated.is_some() {
            return Some(false);
        }
        act.time_activated = Some(now);
        self.active.insert(sled.clone());
        Some(true)
    }
}

impl ConfigRecord {
    pub(crate) fn count(&self, state: MemberState) -> usize {
        self.members.values().filter(|d| d.state == state).count()
    }

    pub(crate) fn member_ids(&self) -> BTreeSet<BaseboardId> {
        self.members.keys().cloned().collect()
    }

    /// The reconfiguration request for the coordinator.
    pub(crate) fn reconfigure_msg(&self, rack_id: RackId, epoch: Epoch) -> ReconfigureMsg {
        ReconfigureMsg {
            rack_id,
            epoch,
            last_committed_epoch: self.last_committed_epoch,
            members: self.member_ids(),
            threshold: self.threshold,
            coordinator: self.coordinator.clone(),
        }
    }

    /// The configuration rebuilt from the ledger, embedding `reconfigure`
    /// (the request for it, signed again), or `None` while a digest is
    /// unknown (never once committing).
    pub(crate) fn rebuild(
        &self,
        rack_id: RackId,
        epoch: Epoch,
        reconfigure: SignedReconfigure,
    ) -> Option<Configuration> {
        let members = self
            .members
            .iter()
            .map(|(m, d)| d.share_digest.map(|digest| (m.clone(), digest)))
            .collect::<Option<BTreeMap<_, _>>>()?;
        Some(Configuration {
            rack_id,
            epoch,
            coordinator: self.coordinator.clone(),
            members,
            threshold: self.threshold,
            encrypted_rack_secrets: self.encrypted_rack_secrets.clone(),
            reconfigure: Box::new(reconfigure),
        })
    }
}
