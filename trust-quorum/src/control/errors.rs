//! The control plane's public error types: why an operator's operation, a
//! node's answer or a stored ledger was refused. A refused operation or
//! result never changes the ledger.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use tq_types::{
    BaseboardId, CommitError, ConfigState, Epoch, PrepareAndCommitError, RackId, Threshold,
};

/// Why a rack's first configuration was refused.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum InitializeError {
    /// The rack already has a committing or committed configuration.
    #[error("rack {rack_id} is already initialized: epoch {epoch} is {state}")]
    AlreadyInitialized {
        /// The rack.
        rack_id: RackId,
        /// Its newest committing or committed epoch.
        epoch: Epoch,
        /// That epoch's state.
        state: ConfigState,
    },
    /// This ledger belongs to another rack.
    #[error("this control plane manages rack {ledger}, not rack {requested}")]
    RackIdMismatch {
        /// The ledger's rack.
        ledger: RackId,
        /// The requested rack.
        requested: RackId,
    },
    /// A different first configuration is still preparing.
    #[error(
        "a different initial configuration at epoch {epoch} is still preparing; abort it first"
    )]
    InProgress {
        /// The preparing epoch.
        epoch: Epoch,
    },
    /// The membership size is not allowed.
    #[error("a membership of {members} sleds is outside the allowed {min}..={max}")]
    MembershipSize {
        /// The proposed number of members.
        members: usize,
        /// The smallest allowed membership.
        min: usize,
        /// The largest allowed membership.
        max: usize,
    },
    /// No member can coordinate (only possible with an empty membership).
    #[error("no member can coordinate the first configuration")]
    NoCoordinatorCandidate,
    /// Every epoch number has been used.
    #[error("no epoch numbers are left")]
    EpochExhausted,
}

/// Why a membership change (adding or removing sleds) could not be
/// proposed, whatever the sleds.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ChangeRefused {
    /// The rack has no committing or committed configuration yet.
    #[error("the rack has no committed configuration yet; initialize it first")]
    NotInitialized,
    /// A different change is still preparing.
    #[error("a different change at epoch {epoch} is in progress; abort it first")]
    InProgress {
        /// The preparing epoch.
        epoch: Epoch,
    },
    /// The new membership size is not allowed.
    #[error("a membership of {members} sleds is outside the allowed {min}..={max}")]
    MembershipSize {
        /// The proposed number of members.
        members: usize,
        /// The smallest allowed membership.
        min: usize,
        /// The largest allowed membership.
        max: usize,
    },
    /// The committing configuration underneath has too few commit
    /// acknowledgements to be superseded.
    #[error(
        "epoch {epoch} is still committing with {committed} commit acknowledgements; {needed} are needed before a new change"
    )]
    PreviousNotCommitted {
        /// The committing epoch.
        epoch: Epoch,
        /// Its commit acknowledgements.
        committed: usize,
        /// The acknowledgements required (K + Z).
        needed: usize,
    },
    /// No member of the new membership committed the last committed
    /// configuration, so none can coordinate.
    #[error(
        "no member of the new membership committed epoch {last_committed:?}; none can coordinate"
    )]
    NoCoordinatorCandidate {
        /// The last committed epoch.
        last_committed: Option<Epoch>,
    },
    /// Every epoch number has been used.
    #[error("no epoch numbers are left")]
    EpochExhausted,
}

/// Why adding sleds was refused.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AddSledsError {
    /// The request names no sled.
    #[error("no sleds to add")]
    NoSleds,
    /// Some sleds are already members of the rack's current membership.
    #[error("already members of the rack: {sleds:?}")]
    AlreadyMembers {
        /// The sleds that are already members.
        sleds: BTreeSet<BaseboardId>,
    },
    /// The change cannot be proposed now.
    #[error(transparent)]
    Refused(#[from] ChangeRefused),
}

/// Why removing sleds was refused.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RemoveSledsError {
    /// The request names no sled.
    #[error("no sleds to remove")]
    NoSleds,
    /// Some sleds are not members of the rack's current membership.
    #[error("not members of the rack: {sleds:?}")]
    NotMembers {
        /// The sleds that are not members.
        sleds: BTreeSet<BaseboardId>,
    },
    /// The change cannot be proposed now.
    #[error(transparent)]
    Refused(#[from] ChangeRefused),
}

/// Why an abort was refused.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error, Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AbortError {
    /// The ledger holds no configuration.
    #[error("there is no configuration to abort")]
    NoConfiguration,
    /// The latest configuration is committing or committed, which is
    /// irreversible.
    #[error("epoch {epoch} is {state}; only a preparing configuration can be aborted")]
    NotPreparing {
        /// The latest epoch.
        epoch: Epoch,
        /// Its state.
        state: ConfigState,
    },
}

/// A node's error answer to a commit or prepare-and-commit request.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberCommitError {
    /// The answer to a commit request.
    #[error(transparent)]
    Commit(#[from] CommitError),
    /// The answer to a prepare-and-commit request.
    #[error(transparent)]
    PrepareAndCommit(#[from] PrepareAndCommitError),
}

/// Why a coordinator's answer to the reconfiguration request was ignored.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ReconfigureResultError {
    /// No configuration has this epoch.
    #[error("no configuration at epoch {0}")]
    UnknownEpoch(Epoch),
    /// The epoch is not the latest.
    #[error("epoch {epoch} is not the latest epoch ({latest}); answer ignored")]
    StaleEpoch {
        /// The answer's epoch.
        epoch: Epoch,
        /// The latest epoch.
        latest: Epoch,
    },
    /// The configuration is no longer preparing.
    #[error("epoch {epoch} is {state}, no longer preparing; answer ignored")]
    NotPreparing {
        /// The epoch.
        epoch: Epoch,
        /// Its state.
        state: ConfigState,
    },
    /// The answer comes from a node that is not the epoch's coordinator.
    #[error("{from} is not the coordinator of epoch {epoch} ({coordinator}); answer ignored")]
    NotCoordinator {
        /// The epoch.
        epoch: Epoch,
        /// The answering node.
        from: BaseboardId,
        /// The epoch's coordinator.
        coordinator: BaseboardId,
    },
}

/// Why a coordinator status was rejected; the ledger is unchanged.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum CoordinatorStatusError {
    /// No configuration has this epoch.
    #[error("no configuration at epoch {0}")]
    UnknownEpoch(Epoch),
    /// The epoch is not the latest.
    #[error("epoch {epoch} is not the latest epoch ({latest}); status ignored")]
    StaleEpoch {
        /// The status's epoch.
        epoch: Epoch,
        /// The latest epoch.
        latest: Epoch,
    },
    /// The configuration is no longer preparing.
    #[error("epoch {epoch} is {state}, no longer preparing; status ignored")]
    NotPreparing {
        /// The epoch.
        epoch: Epoch,
        /// Its state.
        state: ConfigState,
    },
    /// The status comes from a node that is not the epoch's coordinator.
    #[error("{from} is not the coordinator of epoch {epoch} ({coordinator}); status ignored")]
    NotCoordinator {
        /// The epoch.
        epoch: Epoch,
        /// The reporting node.
        from: BaseboardId,
        /// The epoch's coordinator.
        coordinator: BaseboardId,
    },
    /// The coordinator's configuration disagrees with the ledger.
    #[error("status from {from} for epoch {epoch} disagrees with the ledger: {mismatch}")]
    Mismatch {
        /// The epoch.
        epoch: Epoch,
        /// The reporting node.
        from: BaseboardId,
        /// What disagrees.
        mismatch: Box<ConfigMismatch>,
    },
}

/// Why a commit result was rejected; the ledger is unchanged.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum CommitResultError {
    /// No configuration has this epoch.
    #[error("no configuration at epoch {0}")]
    UnknownEpoch(Epoch),
    /// The epoch is not the latest (a newer configuration superseded it).
    #[error("epoch {epoch} is not the latest epoch ({latest}); result ignored")]
    StaleEpoch {
        /// The result's epoch.
        epoch: Epoch,
        /// The latest epoch.
        latest: Epoch,
    },
    /// The configuration is not committing (still preparing, or aborted).
    #[error("epoch {epoch} is {state}, not committing; result ignored")]
    NotCommitting {
        /// The epoch.
        epoch: Epoch,
        /// Its state.
        state: ConfigState,
    },
    /// The node is not a member of the configuration.
    #[error("{member} is not a member of epoch {epoch}; result ignored")]
    NotAMember {
        /// The epoch.
        epoch: Epoch,
        /// The node.
        member: BaseboardId,
    },
}

/// Why an activation report was rejected.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ActivationError {
    /// The sled never committed as a newly joined member.
    #[error("{sled} did not join through a membership change; nothing to activate")]
    NotJoined {
        /// The sled.
        sled: BaseboardId,
    },
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
    /// The configuration does not embed the request the control plane
    /// signed for this epoch (another request, or a bad signature).
    #[error("the configuration does not embed the signed request for its epoch")]
    Reconfigure,
}
