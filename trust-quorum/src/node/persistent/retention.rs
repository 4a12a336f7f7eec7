//! Which epochs a persistent state keeps (docs/protocol.md section 2.4).
//!
//! A state keeps at most three epochs:
//!
//! - the newest committed one: its share is what the node contributes to
//!   rebuilding the current rack secret, and its configuration seals every
//!   earlier secret, so nothing below it is needed again;
//! - the newest stored configuration: the newest signed decision wins over
//!   any uncommitted attempt before it, which the control plane started a
//!   newer epoch only after abandoning;
//! - the epoch that newest configuration builds on, while the node has not
//!   yet committed it: the authority signed that it is committed, and its
//!   coordinator needs this node's share of it.
//!
//! Everything else is dropped in the same write that made it unneeded.

use std::collections::{BTreeMap, BTreeSet};

use tq_types::{Configuration, Epoch};

/// The most configurations (and shares, and certificates) a state keeps.
pub(super) const RETAINED_EPOCHS: usize = 3;

/// The epochs a state keeps, computed from its commits and configurations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Retention {
    committed: Option<Epoch>,
    newest: Option<Epoch>,
    base: Option<Epoch>,
}

impl Retention {
    /// The retention of a state with these commits and configurations.
    pub(super) fn of(
        commits: &BTreeSet<Epoch>,
        configs: &BTreeMap<Epoch, Configuration>,
    ) -> Retention {
        let committed = commits.last().copied();
        let newest = configs.last_key_value();
        let base = newest
            .and_then(|(_, c)| c.reconfigure.msg.last_committed_epoch)
            .filter(|b| committed.is_none_or(|c| *b > c));
        Retention { committed, newest: newest.map(|(e, _)| *e), base }
    }

    /// Whether `epoch` is kept.
    pub(super) fn keeps(&self, epoch: Epoch) -> bool {
        [self.committed, self.newest, self.base].contains(&Some(epoch))
    }

    /// Whether a configuration of `epoch` would be kept if it were stored
    /// now: it would be the newest, or it is already one of the kept.
    pub(super) fn would_keep(&self, epoch: Epoch) -> bool {
        match self.newest {
            Some(newest) if epoch < newest => self.keeps(epoch),
            _ => true,
        }
    }
}
