//! The control plane's durable record of one rack: every configuration by
//! epoch with its state and its members' states, and the activation status
//! of newly joined sleds (docs/protocol.md section 5).
//!
//! All transitions live here. Each is applied by [`super::ControlPlane`] to
//! a draft copy of the ledger that replaces the real one only when the whole
//! operation succeeded, so a rejection never leaves a partial change.

use core::fmt;
use std::collections::{BTreeMap, BTreeSet};

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use tq_types::membership::serde_member_map;
use tq_types::{
    BaseboardId, ConfigState, Configuration, CoordinatorStatus, EncryptedRackSecrets, Epoch,
    MemberState, RackId, RackMembershipStatus, ReconfigurationError, ReconfigureMsg, Threshold,
    Timestamp, TrustQuorumConfig, TrustQuorumMemberData,
};

use super::policy::{Policy, required_acks};

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
    rack_id: Option<RackId>,
    configs: BTreeMap<Epoch, ConfigRecord>,
    /// Sleds in service, which the control plane can address directly.
    active: BTreeSet<BaseboardId>,
    /// Sleds that joined through a later configuration, with their activation
    /// status.
    #[serde(with = "serde_member_map")]
    activations: BTreeMap<BaseboardId, ActivationRecord>,
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

/// A ledger that breaks one of the control plane's rules (docs/protocol.md
/// section 7.3, "Ledger"), found when loading it.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum LedgerError {
    /// Configurations exist without a rack id, or a rack id without an
    /// initial configuration.
    #[error("the rack id and the configurations disagree about whether the rack is initialized")]
    RackIdInconsistent,
    /// Epochs are not 1, 2, 3, ... without gaps.
    #[error("epochs are not sequential: expected epoch {expected}, found {found}")]
    EpochGap {
        /// The epoch that should come next.
        expected: Epoch,
        /// The epoch found instead.
        found: Epoch,
    },
    /// A configuration that is not the latest is still preparing or
    /// committing.
    #[error("epoch {epoch} is {state} but is not the latest configuration")]
    ActiveNotLatest {
        /// The configuration.
        epoch: Epoch,
        /// Its state.
        state: ConfigState,
    },
    /// A configuration does not build on the newest committing or committed
    /// configuration before it.
    #[error("epoch {epoch} builds on {recorded:?} instead of {expected:?}")]
    WrongLastCommitted {
        /// The configuration.
        epoch: Epoch,
        /// What it records.
        recorded: Option<Epoch>,
        /// The newest committing or committed configuration before it.
        expected: Option<Epoch>,
    },
    /// Size, threshold or coordinator of a configuration are invalid.
    #[error("epoch {epoch} has an invalid membership, threshold or coordinator")]
    InvalidShape {
        /// The configuration.
        epoch: Epoch,
    },
    /// A member's state, digest and timestamps disagree, or a member is
    /// committed in a configuration that is not committing.
    #[error("member {member} of epoch {epoch} has an inconsistent record")]
    InconsistentMember {
        /// The configuration.
        epoch: Epoch,
        /// The member.
        member: BaseboardId,
    },
    /// A configuration's state disagrees with its members' states or its
    /// timestamps.
    #[error("epoch {epoch} is {state} but its members or timestamps say otherwise")]
    InconsistentState {
        /// The configuration.
        epoch: Epoch,
        /// Its state.
        state: ConfigState,
    },
    /// An activation record names an epoch without a commit of that sled.
    #[error("activation record of {sled} names epoch {epoch}, where it did not commit")]
    InconsistentActivation {
        /// The sled.
        sled: BaseboardId,
        /// The epoch named.
        epoch: Epoch,
    },
}

/// A coordinator status whose configuration disagrees with the ledger.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ConfigMismatch {
    /// Another rack.
    #[error("rack id {got} instead of {expected}")]
    RackId {
        /// The ledger's rack.
        expected: RackId,
        /// The status's rack.
        got: RackId,
    },
    /// Another epoch.
    #[error("epoch {got} instead of {expected}")]
    Epoch {
        /// The polled epoch.
        expected: Epoch,
        /// The status's epoch.
        got: Epoch,
    },
    /// Another coordinator named in the configuration.
    #[error("coordinator {got} instead of {expected}")]
    Coordinator {
        /// The ledger's coordinator.
        expected: BaseboardId,
        /// The configuration's coordinator.
        got: BaseboardId,
    },
    /// Another membership.
    #[error("membership differs: missing {missing:?}, unexpected {unexpected:?}")]
    Members {
        /// Ledger members absent from the status.
        missing: BTreeSet<BaseboardId>,
        /// Status members absent from the ledger.
        unexpected: BTreeSet<BaseboardId>,
    },
    /// Another threshold.
    #[error("threshold {got} instead of {expected}")]
    Threshold {
        /// The ledger's threshold.
        expected: Threshold,
        /// The status's threshold.
        got: Threshold,
    },
    /// A share digest differs from the one already recorded.
    #[error("share digest of {member} differs from the recorded one")]
    Digest {
        /// The member.
        member: BaseboardId,
    },
    /// The sealed prior secrets differ from (or drop) the recorded ones.
    #[error("encrypted rack secrets differ from the recorded ones")]
    EncryptedRackSecrets,
    /// Prepare acknowledgements are reported for a configuration that builds
    /// on a committed one but carries no sealed prior secrets.
    #[error("prepare acknowledgements without encrypted rack secrets")]
    MissingEncryptedRackSecrets,
    /// An acknowledgement from a node that is not a member.
    #[error("prepare acknowledgement from non-member {member}")]
    AckFromNonMember {
        /// The node.
        member: BaseboardId,
    },
}

/// Why a proposal was refused (docs/protocol.md section 5.4); each operation
/// maps it into its own error.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum ProposeError {
    NotInitialized,
    InProgress { epoch: Epoch },
    MembershipSize { members: usize },
    PreviousNotCommitted { epoch: Epoch, committed: usize, needed: usize },
    NoCoordinatorCandidate { last_committed: Option<Epoch> },
    EpochExhausted,
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

    /// Checks every rule a ledger must satisfy (docs/protocol.md sections 5 and
    /// 7.3): sequential epochs, at most one non-terminal configuration and
    /// only as the latest, each configuration built on the newest committing
    /// or committed one before it, aborted only from preparing, member
    /// states consistent with digests, timestamps and the configuration's
    /// state, and K+Z acknowledgements behind every commit.
    pub fn validate(&self) -> Result<(), LedgerError> {
        if self.rack_id.is_some() == self.configs.is_empty() {
            return Err(LedgerError::RackIdInconsistent);
        }
        let latest = self.configs.keys().next_back().copied();
        let mut expected = Epoch::INITIAL;
        let mut newest_committed: Option<Epoch> = None;
        for (&epoch, rec) in &self.configs {
            if epoch != expected {
                return Err(LedgerError::EpochGap { expected, found: epoch });
            }
            if !rec.state.is_terminal() && Some(epoch) != latest {
                return Err(LedgerError::ActiveNotLatest { epoch, state: rec.state });
            }
            if rec.last_committed_epoch != newest_committed {
                return Err(LedgerError::WrongLastCommitted {
                    epoch,
                    recorded: rec.last_committed_epoch,
                    expected: newest_committed,
                });
            }
            validate_record(epoch, rec, Some(epoch) == latest)?;
            if rec.state.is_committed_or_committing() {
                newest_committed = Some(epoch);
            }
            expected = epoch.next().unwrap_or(epoch);
        }
        for (sled, act) in &self.activations {
            let committed = self
                .configs
                .get(&act.epoch)
                .and_then(|rec| rec.members.get(sled))
                .is_some_and(|m| m.state == MemberState::Committed);
            if !committed {
                return Err(LedgerError::InconsistentActivation {
                    sled: sled.clone(),
                    epoch: act.epoch,
                });
            }
        }
        Ok(())
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

    /// Inserts a validated proposal (docs/protocol.md section 5.4) for `members`
    /// at the next epoch, building on the newest committing or committed
    /// configuration. Mutates only on success, but callers still apply it to
    /// a draft.
    pub(crate) fn propose<R: CryptoRng + ?Sized>(
        &mut self,
        members: BTreeSet<BaseboardId>,
        attempt: u32,
        policy: &Policy,
        now: Timestamp,
        rng: &mut R,
    ) -> Result<Epoch, ProposeError> {
        if self.rack_id.is_none() {
            return Err(ProposeError::NotInitialized);
        }
        let latest = self.latest().map(|(e, r)| (e, r.state));
        if let Some((epoch, ConfigState::Preparing)) = latest {
            return Err(ProposeError::InProgress { epoch });
        }
        let n = members.len();
        let (Some(threshold), Some(z)) = (policy.threshold(n), policy.crash_tolerance(n)) else {
            return Err(ProposeError::MembershipSize { members: n });
        };
        let epoch = match latest {
            None => Epoch::INITIAL,
            Some((e, _)) => e.next().ok_or(ProposeError::EpochExhausted)?,
        };

        let base = self.base().map(|(e, r)| (e, r.clone()));
        if let Some((base_epoch, base_rec)) = &base
            && base_rec.state == ConfigState::Committing
        {
            let committed = base_rec.count(MemberState::Committed);
            let needed = required_acks(base_rec.threshold, base_rec.commit_crash_tolerance);
            if committed < needed {
                return Err(ProposeError::PreviousNotCommitted {
                    epoch: *base_epoch,
                    committed,
                    needed,
                });
            }
        }

        let candidates: Vec<BaseboardId> = match &base {
            None => members.iter().cloned().collect(),
            Some((_, b)) => members
                .iter()
                .filter(|m| b.members.get(*m).is_some_and(|d| d.state == MemberState::Committed))
                .cloned()
                .collect(),
        };
        // Coordinators of aborted attempts since the base, newest first.
        let base_epoch = base.as_ref().map(|(e, _)| *e);
        let failed: Vec<BaseboardId> = self
            .configs
            .iter()
            .rev()
            .take_while(|(e, _)| Some(**e) != base_epoch)
            .filter(|(_, r)| r.state == ConfigState::Aborted)
            .map(|(_, r)| r.coordinator.clone())
            .collect();
        let avoid_all: Vec<BaseboardId> =
            candidates.iter().filter(|c| !failed.contains(c)).cloned().collect();
        let avoid_last: Vec<BaseboardId> =
            candidates.iter().filter(|c| failed.first() != Some(*c)).cloned().collect();
        let pool = if !avoid_all.is_empty() {
            avoid_all
        } else if !avoid_last.is_empty() {
            avoid_last
        } else {
            candidates
        };
        let coordinator = pick_one(&pool, rng)
            .ok_or(ProposeError::NoCoordinatorCandidate { last_committed: base_epoch })?;

        if let Some((base_epoch, base_rec)) = &base
            && base_rec.state == ConfigState::Committing
            && let Some(b) = self.configs.get_mut(base_epoch)
        {
            b.state = ConfigState::CommittedPartially;
            b.time_committed = Some(now);
        }

        let record = ConfigRecord {
            last_committed_epoch: base_epoch,
            state: ConfigState::Preparing,
            threshold,
            commit_crash_tolerance: z,
            coordinator,
            members: members
                .into_iter()
                .map(|m| {
                    (
                        m,
                        TrustQuorumMemberData {
                            share_digest: None,
                            state: MemberState::Unacked,
                            time_committed: None,
                            time_prepared: None,
                        },
                    )
                })
                .collect(),
            encrypted_rack_secrets: None,
            abort_reason: None,
            attempt,
            time_created: now,
            time_reconfigure_sent: None,
            time_committing: None,
            time_committed: None,
            time_aborted: None,
        };
        self.configs.insert(epoch, record);
        Ok(epoch)
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

    /// The detailed view of one configuration.
    pub(crate) fn view(&self, epoch: Epoch) -> Option<TrustQuorumConfig> {
        let rec = self.configs.get(&epoch)?;
        Some(TrustQuorumConfig {
            abort_reason: rec.abort_reason.as_ref().map(ToString::to_string),
            commit_crash_tolerance: rec.commit_crash_tolerance,
            coordinator: rec.coordinator.clone(),
            encrypted_rack_secrets: rec.encrypted_rack_secrets.clone(),
            epoch,
            last_committed_epoch: rec.last_committed_epoch,
            members: rec.members.clone(),
            rack_id: self.rack_id?,
            state: rec.state,
            threshold: rec.threshold,
            time_aborted: rec.time_aborted,
            time_committed: rec.time_committed,
            time_committing: rec.time_committing,
            time_created: rec.time_created,
        })
    }

    /// The operator's status of the change that created `epoch`.
    pub(crate) fn status(&self, epoch: Epoch) -> Option<RackMembershipStatus> {
        let rec = self.configs.get(&epoch)?;
        Some(RackMembershipStatus {
            epoch,
            members: rec.members.keys().cloned().collect(),
            rack_id: self.rack_id?,
            state: rec.state.into(),
            time_aborted: rec.time_aborted,
            time_committed: rec.time_committed,
            time_created: rec.time_created,
            unacknowledged_members: rec
                .members
                .iter()
                .filter(|(_, d)| d.state != MemberState::Committed)
                .map(|(m, _)| m.clone())
                .collect(),
        })
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
        }
    }

    /// The configuration rebuilt from the ledger, or `None` while a digest
    /// is unknown (never once committing).
    pub(crate) fn rebuild(&self, rack_id: RackId, epoch: Epoch) -> Option<Configuration> {
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
        })
    }
}

fn validate_record(epoch: Epoch, rec: &ConfigRecord, is_latest: bool) -> Result<(), LedgerError> {
    let n = rec.members.len();
    let shape_ok = (tq_types::ids::MIN_MEMBERS..=tq_types::ids::MAX_MEMBERS).contains(&n)
        && rec.threshold >= Threshold::MIN
        && rec.threshold <= Threshold::MAX
        && usize::from(rec.threshold.0) < n
        && rec.members.contains_key(&rec.coordinator);
    if !shape_ok {
        return Err(LedgerError::InvalidShape { epoch });
    }
    for (member, d) in &rec.members {
        let consistent = match d.state {
            MemberState::Unacked => d.time_prepared.is_none() && d.time_committed.is_none(),
            MemberState::Prepared => {
                d.share_digest.is_some() && d.time_prepared.is_some() && d.time_committed.is_none()
            }
            MemberState::Committed => {
                d.share_digest.is_some()
                    && d.time_committed.is_some()
                    && rec.state.is_committed_or_committing()
            }
        };
        if !consistent {
            return Err(LedgerError::InconsistentMember { epoch, member: member.clone() });
        }
    }
    let needed = required_acks(rec.threshold, rec.commit_crash_tolerance);
    let acked = rec.members.values().filter(|d| d.state != MemberState::Unacked).count();
    let committed = rec.count(MemberState::Committed);
    let all_digests = rec.members.values().all(|d| d.share_digest.is_some());
    let consistent = match rec.state {
        ConfigState::Preparing => {
            rec.time_committing.is_none()
                && rec.time_committed.is_none()
                && rec.time_aborted.is_none()
                && rec.abort_reason.is_none()
        }
        ConfigState::Committing => {
            all_digests
                && acked >= needed
                && committed < n
                && rec.time_committing.is_some()
                && rec.time_committed.is_none()
                && rec.time_aborted.is_none()
        }
        ConfigState::Committed => {
            all_digests
                && committed == n
                && rec.time_committing.is_some()
                && rec.time_committed.is_some()
                && rec.time_aborted.is_none()
        }
        ConfigState::CommittedPartially => {
            all_digests
                && !is_latest
                && committed >= needed
                && rec.time_committing.is_some()
                && rec.time_committed.is_some()
                && rec.time_aborted.is_none()
        }
        ConfigState::Aborted => {
            rec.time_committing.is_none()
                && rec.time_committed.is_none()
                && rec.time_aborted.is_some()
                && rec.abort_reason.is_some()
        }
    };
    if !consistent {
        return Err(LedgerError::InconsistentState { epoch, state: rec.state });
    }
    Ok(())
}

/// One element of `pool` chosen with `rng`, or `None` if it is empty.
pub(crate) fn pick_one<T: Clone, R: CryptoRng + ?Sized>(pool: &[T], rng: &mut R) -> Option<T> {
    let len = u64::try_from(pool.len()).ok()?;
    let index = rng.next_u64().checked_rem(len)?;
    pool.get(usize::try_from(index).ok()?).cloned()
}
