//! What a sled may have dropped from its durable state: the simulator's own
//! statement of the retention rule (docs/protocol.md section 2.4), written
//! independently of the product's `retention.rs`.
//!
//! A sled drops an epoch's configuration and share once it is superseded:
//! the sled committed a later epoch, or (for an epoch other than its newest
//! commit) stored a later configuration that does not build on it. Checks that look for an epoch on a disk accept its
//! absence only then.

use tq_types::Epoch;
use trust_quorum::PersistentState;

/// Whether `state` has durably moved past `epoch`, so that it may no longer
/// hold it: it committed a later epoch, or, for an epoch that is not its
/// newest commit, it stored a later configuration not built on it.
pub(crate) fn superseded(state: &PersistentState, epoch: Epoch) -> bool {
    let latest = state.latest_committed_epoch();
    latest.is_some_and(|l| l > epoch)
        || (latest != Some(epoch)
            && state
                .configs()
                .iter()
                .any(|(e, c)| *e > epoch && c.reconfigure.msg.last_committed_epoch != Some(epoch)))
}

/// Whether `state` holds `epoch` prepared, or has moved past it.
pub(crate) fn prepared_or_superseded(state: &PersistentState, epoch: Epoch) -> bool {
    state.is_prepared(epoch) || superseded(state, epoch)
}

/// Whether `state` committed `epoch` or a later epoch: earlier commits are
/// not kept, and the later configuration seals the earlier secrets.
pub(crate) fn committed_at_or_after(state: &PersistentState, epoch: Epoch) -> bool {
    state.latest_committed_epoch().is_some_and(|l| l >= epoch)
}
