//! The node-side checks of the persistent state, which need the node's id:
//! loading a state for a node, and checking the node's own share against
//! its digest before every use.

use tq_types::{Alarm, BaseboardId, Epoch, Share, StateCorruption};

use super::PersistentState;
use super::error::InvalidPersistentState;
use crate::crypto;
use crate::node::ctx::{NodeCtx, NodeRng};
use crate::planted::PlantedBug;

impl NodeCtx {
    /// A context for a node restarting with state read back from its
    /// durable store, after checking that the state is this node's
    /// ([`PersistentState::validate`]). Embedders loading a state from disk
    /// should use this rather than
    /// [`with_persistent_state`](Self::with_persistent_state), which trusts
    /// its input.
    pub fn try_with_persistent_state(
        id: BaseboardId,
        persistent: PersistentState,
        rng: impl NodeRng + 'static,
    ) -> Result<Self, InvalidPersistentState> {
        persistent.validate(&id)?;
        Ok(Self::with_persistent_state(id, persistent, rng))
    }

    /// This node's own share of `epoch`, checked against its digest in the
    /// stored configuration of `epoch` right before use. `None` when no share
    /// is stored, or when it does not match: then
    /// [`Alarm::CorruptState`] is raised and the share must not be used.
    pub(crate) fn checked_own_share(&mut self, epoch: Epoch) -> Option<Share> {
        let state = self.persistent_state();
        let share = state.share(epoch)?.clone();
        let matches = state
            .config(epoch)
            .and_then(|config| config.members.get(self.id()))
            .is_some_and(|digest| crypto::share_matches(&share, digest));
        if matches || self.has_bug(PlantedBug::SkipShareDigestCheck) {
            return Some(share);
        }
        self.raise_alarm(Alarm::CorruptState {
            epoch,
            reason: StateCorruption::ShareDigestMismatch,
        });
        None
    }
}
