//! What a node is busy with besides answering: coordinating one epoch, or
//! computing its own share of one, never both (docs/protocol.md section
//! 2.2).

use tq_types::{BaseboardId, Epoch};

use super::coordinator::Coordinator;
use super::ctx::NodeCtx;
use super::key_share::KeyShareComputer;

/// A node's in-memory work. Neither kind is persisted: both start over when
/// the control plane asks again after a restart.
#[derive(Default)]
pub(crate) enum Activity {
    /// Nothing in progress.
    #[default]
    Idle,
    /// Coordinating a reconfiguration (boxed: it is by far the largest).
    Coordinating(Box<Coordinator>),
    /// Rebuilding this node's share of a committed configuration whose
    /// prepare it missed.
    ComputingShare(KeyShareComputer),
}

impl Activity {
    /// The coordinator, if coordinating.
    pub(crate) fn coordinator(&self) -> Option<&Coordinator> {
        match self {
            Activity::Coordinating(c) => Some(c),
            _ => None,
        }
    }

    /// The epoch being coordinated.
    pub(crate) fn coordinating(&self) -> Option<Epoch> {
        self.coordinator().map(Coordinator::epoch)
    }

    /// The epoch whose share is being computed.
    pub(crate) fn computing_share(&self) -> Option<Epoch> {
        match self {
            Activity::ComputingShare(k) => Some(k.epoch()),
            _ => None,
        }
    }

    /// Stops coordinating if the epoch being coordinated is `epoch` or older.
    pub(crate) fn stop_coordinating_up_to(&mut self, epoch: Epoch) {
        if self.coordinating().is_some_and(|c| c <= epoch) {
            *self = Activity::Idle;
        }
    }

    /// Stops computing a share if its epoch is `epoch` or older.
    pub(crate) fn stop_computing_up_to(&mut self, epoch: Epoch) {
        if self.computing_share().is_some_and(|k| k <= epoch) {
            *self = Activity::Idle;
        }
    }

    /// A connection to `peer` came up: re-sends what the work in progress
    /// still needs from it.
    pub(crate) fn on_connect(&self, ctx: &mut NodeCtx, peer: &BaseboardId) {
        match self {
            Activity::Idle => {}
            Activity::Coordinating(c) => c.on_connect(ctx, peer),
            Activity::ComputingShare(k) => k.on_connect(ctx, peer),
        }
    }
}
