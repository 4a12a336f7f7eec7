//! Validation of control-plane requests and received configurations.
//!
//! A request that passed validation is wrapped in a type only this module
//! can build, so the coordinator cannot be started on an unchecked request.

use tq_types::ids::{MAX_MEMBERS, MIN_MEMBERS};
use tq_types::{
    AuthorityError, BaseboardId, Configuration, Epoch, InvalidConfiguration, NodeRefusal, RackId,
    RackIdMismatch, ReconfigurationError, ReconfigureMsg, SignedReconfigure, Threshold,
};

use super::persistent::{MAX_ID_FIELD_LEN, MAX_SEALED_DATA_LEN, PersistentState};
use crate::crypto::authority::verify_reconfigure;

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

/// Refuses a decision the authority did not sign.
pub(crate) fn check_authorized(result: Result<(), AuthorityError>) -> Result<(), NodeRefusal> {
    result.map_err(NodeRefusal::Unauthorized)
}

/// Checks the structure of a configuration received from a peer or the
/// control plane, including the size caps of what a node stores (ids of at
/// most [`MAX_ID_FIELD_LEN`] bytes per field, sealed secrets of at most
/// [`MAX_SEALED_DATA_LEN`] bytes), so that nothing stored can make the
/// state fail its own decoding later.
pub(crate) fn check_config(config: &Configuration) -> Result<(), InvalidConfiguration> {
    check_bounds(config.members.len(), config.threshold)?;
    if !config.is_member(&config.coordinator) {
        return Err(InvalidConfiguration::CoordinatorNotMember {
            coordinator: config.coordinator.clone(),
        });
    }
    let longest_id = config.members.keys().map(id_field_len).max().unwrap_or(0);
    if longest_id > MAX_ID_FIELD_LEN {
        return Err(InvalidConfiguration::IdTooLong { len: longest_id, max: MAX_ID_FIELD_LEN });
    }
    if let Some(sealed) = &config.encrypted_rack_secrets {
        let len = sealed.data.len();
        if len > MAX_SEALED_DATA_LEN {
            return Err(InvalidConfiguration::SealedDataTooLong { len, max: MAX_SEALED_DATA_LEN });
        }
    }
    Ok(())
}

/// The length of the longer of an id's two fields.
pub(crate) fn id_field_len(id: &BaseboardId) -> usize {
    id.part_number().len().max(id.serial_number().len())
}

/// A reconfiguration request that passed every check of docs/protocol.md section
/// 3.3 against the node's state at the time, signed by the authority and
/// naming this node as its coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ValidatedReconfigureMsg(SignedReconfigure);

impl ValidatedReconfigureMsg {
    /// Validates `msg` for node `me` with durable state `state`. The
    /// "already coordinating" check is the caller's, since it needs the
    /// in-memory coordinator.
    pub(crate) fn validate(
        me: &BaseboardId,
        state: &PersistentState,
        signed: SignedReconfigure,
    ) -> Result<Self, ReconfigurationError> {
        check_authorized(verify_reconfigure(state.authority(), &signed))?;
        let msg = &signed.msg;
        if msg.coordinator != *me {
            return Err(NodeRefusal::Unauthorized(AuthorityError::NotTheCoordinator).into());
        }
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
        Ok(Self(signed))
    }

    /// The validated request.
    pub(crate) fn msg(&self) -> &ReconfigureMsg {
        &self.0.msg
    }

    /// The validated request with the authority's signature, which the
    /// configuration built from it embeds.
    pub(crate) fn signed(&self) -> &SignedReconfigure {
        &self.0
    }
}
