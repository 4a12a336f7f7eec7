//! Computing this node's share of a committed configuration whose prepare it
//! missed (docs/protocol.md section 4.4): collect K validated shares from other
//! members, interpolate at this node's x-coordinate, check the result against
//! this node's digest, then persist share and commit in one write.

use tq_types::{Alarm, BaseboardId, Configuration, Epoch, Share, ShareComputationFailure};

use super::ctx::NodeCtx;
use super::share_collector::ShareCollector;
use crate::crypto;

/// The outcome of feeding a share to the computer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Computation {
    /// More shares are needed.
    Pending,
    /// The share and the commit were persisted.
    Committed,
    /// The computation failed and an alarm was raised.
    Failed,
}

/// The in-memory state of a node computing its missed share.
pub(crate) struct KeyShareComputer {
    collector: ShareCollector,
}

impl KeyShareComputer {
    /// Starts computing the share of `config` (already stored) and asks every
    /// connected member for theirs.
    pub(crate) fn start(ctx: &mut NodeCtx, config: Configuration) -> Self {
        tracing::info!(node = %ctx.id(), epoch = %config.epoch, "computing missed share");
        let collector = ShareCollector::new(config, None);
        collector.request_from_connected(ctx);
        Self { collector }
    }

    /// The epoch whose share is computed.
    pub(crate) fn epoch(&self) -> Epoch {
        self.collector.epoch()
    }

    /// Asks a newly connected peer for its share if it is still missing.
    pub(crate) fn on_connect(&self, ctx: &mut NodeCtx, peer: &BaseboardId) {
        self.collector.request_from(ctx, peer);
    }

    /// A share from `from` arrived.
    pub(crate) fn on_share(
        &mut self,
        ctx: &mut NodeCtx,
        from: &BaseboardId,
        epoch: Epoch,
        share: Share,
    ) -> Computation {
        if !self.collector.accept(ctx, "key_share_computer", from, epoch, share) {
            return Computation::Pending;
        }
        if !self.collector.is_complete() {
            return Computation::Pending;
        }
        let config = self.collector.config();
        let me = ctx.id().clone();
        let (Some(x), Some(digest)) = (config.x_coordinate(&me), config.members.get(&me)) else {
            debug_assert!(false, "computer started for a configuration without this node");
            return Computation::Failed;
        };
        let reason = match crypto::interpolate(&self.collector.threshold_shares(), x) {
            Ok(share) if crypto::share_matches(&share, digest) => {
                ctx.update_persistent(|p| {
                    let s = p.insert_share(epoch, share);
                    let c = p.insert_commit(epoch);
                    (s || c, ())
                });
                tracing::info!(node = %me, %epoch, "computed missed share and committed");
                return Computation::Committed;
            }
            Ok(_) => ShareComputationFailure::DigestMismatch,
            Err(_) => ShareComputationFailure::Interpolation,
        };
        ctx.raise_alarm(Alarm::ShareComputationFailed { epoch, reason });
        Computation::Failed
    }
}
