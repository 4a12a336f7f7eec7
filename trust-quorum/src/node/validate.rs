//! Validation of control-plane requests and received configurations.
//!
//! A request that passed validation is wrapped in a type only this module
//! can build, so the coordinator cannot be started on an unchecked request.

use tq_types::ids::{MAX_MEMBERS, MIN_MEMBERS};
use tq_types::{
    BaseboardId, Configuration, Epoch, InvalidConfiguration, NodeRefusal, RackId, RackIdMismatch,
    ReconfigurationError, ReconfigureMsg, Threshold,
};

use super::persistent::PersistentState;

/// Checks membership size and threshold bounds (docs/protocol.md section 1).
pub(crate) fn check_bounds(
    members: usize,
    threshold: Threshold,
) -> Result<(), InvalidConfiguration> {
    if usize::from(threshold.0) >= members {
        return Err(InvalidConfiguration::ThresholdNotBelowMembers { threshold, members });
    }
    if !(MIN_MEMBERS..=MAX_MEMBERS).contains(&members) {
        return Err(InvalidConfiguration::MembershipSize { members });
    }
    if threshold < Threshold::MIN || threshold > Threshold::MAX {
        return Err(InvalidConfiguration::Threshold { threshold });
    }
    Ok(())
}

/// Refuses a control-plane request for a rack other than the node's (a
/// node with no configuration accepts any rack).
pub(crate) fn check_rack(state: &PersistentState, requested: RackId) -> Result<(), NodeRefusal> {
    match state.rack_id() {
        Some(expected) if expected != requested => {
            Err(NodeRefusal::RackIdMismatch(RackIdMismatch { expected, got: requested }))
        }
        _ => Ok(()),
    }
}

/// Refuses a control-plane request from an expunged node: any request, or
/// with `epoch`, one about that epoch unless it is later than the
/// expungement (docs/protocol.md section 4.8).
pub(crate) fn check_not_expunged(
    state: &PersistentState,
    epoch: Option<Epoch>,
) -> Result<(), NodeRefusal> {
    let expunged = match epoch {
        Some(epoch) => state.expunged_for(epoch),
        None => state.expunged(),
    };
    match expunged {
        Some(ex) => Err(NodeRefusal::Expunged { epoch: ex.epoch, from: ex.from.clone() }),
        None => Ok(()),
    }
}

/// Checks the structure of a configuration received from a peer or the
/// control plane.
pub(crate) fn check_config(config: &Configuration) -> Result<(), InvalidConfiguration> {
    check_bounds(config.members.len(), config.threshold)?;
    if !config.is_member(&config.coordinator) {
        return Err(InvalidConfiguration::CoordinatorNotMember {
            coordinator: config.coordinator.clone(),
        });
    }
    Ok(())
}

/// A reconfiguration request that passed every check of docs/protocol.md section
/// 3.3 against the node's state at the time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ValidatedReconfigureMsg(ReconfigureMsg);

impl ValidatedReconfigureMsg {
    /// Validates `msg` for node `me` with durable state `state`. The
    /// "already coordinating" check is the caller's, since it needs the
    /// in-memory coordinator.
    pub(crate) fn validate(
        me: &BaseboardId,
        state: &PersistentState,
        msg: ReconfigureMsg,
    ) -> Result<Self, ReconfigurationError> {
        if !msg.members.contains(me) {
            return Err(ReconfigurationError::CoordinatorNotMember { node: me.clone() });
        }
        check_bounds(msg.members.len(), msg.threshold).map_err(ReconfigurationError::Invalid)?;
        check_rack(state, msg.rack_id)?;
        check_not_expunged(state, None)?;
        let actual = state.latest_committed_epoch();
        if msg.last_committed_epoch != actual {
            return Err(ReconfigurationError::LastCommittedEpochMismatch {
                requested: msg.last_committed_epoch,
                actual,
            });
        }
        // Epoch 0 is never valid: the first configuration is epoch 1.
        let latest = state.latest_config().map_or(Epoch(0), |c| c.epoch);
        if msg.epoch <= latest {
            return Err(ReconfigurationError::StaleEpoch { requested: msg.epoch, latest });
        }
        Ok(Self(msg))
    }

    /// The validated request.
    pub(crate) fn msg(&self) -> &ReconfigureMsg {
        &self.0
    }
}
