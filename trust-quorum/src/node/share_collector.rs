//! Gathering validated shares of one configuration from its members: the
//! piece shared by the coordinator (old shares), the key-share computer and
//! the rack-secret loader.

use std::collections::BTreeMap;

use tq_types::{BaseboardId, Configuration, Epoch, PeerMsgKind, Share};

use super::ctx::NodeCtx;
use crate::crypto::{self, SHARE_LEN};
use crate::planted::PlantedBug;

/// Why an offered share was not taken.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Rejected {
    /// Not collecting for that epoch.
    WrongEpoch,
    /// The sender is not a member of the configuration.
    NotMember,
    /// A share from this sender is already held.
    Duplicate,
    /// The share has the wrong length.
    BadLength,
    /// The share does not match the sender's digest.
    DigestMismatch,
}

/// Shares of one configuration, each checked against its sender's digest.
pub(crate) struct ShareCollector {
    config: Configuration,
    collected: BTreeMap<BaseboardId, Share>,
}

impl ShareCollector {
    /// Starts collecting shares of `config`, optionally seeded with this
    /// node's own share, already checked against its digest
    /// (`NodeCtx::checked_own_share`).
    pub(crate) fn new(config: Configuration, own: Option<(BaseboardId, Share)>) -> Self {
        let mut collected = BTreeMap::new();
        if let Some((id, share)) = own {
            collected.insert(id, share);
        }
        Self { config, collected }
    }

    /// The configuration whose shares are collected.
    pub(crate) fn config(&self) -> &Configuration {
        &self.config
    }

    /// The epoch whose shares are collected.
    pub(crate) fn epoch(&self) -> Epoch {
        self.config.epoch
    }

    /// Validates and keeps a share from `from` for `role`; returns whether
    /// it was taken, logging why not.
    pub(crate) fn accept(
        &mut self,
        ctx: &NodeCtx,
        role: &'static str,
        from: &BaseboardId,
        epoch: Epoch,
        share: Share,
    ) -> bool {
        match self.offer(ctx, from, epoch, share) {
            Ok(()) => true,
            Err(why) => {
                log_rejected(role, from, epoch, why);
                false
            }
        }
    }

    fn offer(
        &mut self,
        ctx: &NodeCtx,
        from: &BaseboardId,
        epoch: Epoch,
        share: Share,
    ) -> Result<(), Rejected> {
        if epoch != self.config.epoch {
            return Err(Rejected::WrongEpoch);
        }
        let digest = self.config.members.get(from).ok_or(Rejected::NotMember)?;
        if self.collected.contains_key(from) {
            return Err(Rejected::Duplicate);
        }
        if share.as_bytes().len() != SHARE_LEN {
            return Err(Rejected::BadLength);
        }
        if !crypto::share_matches(&share, digest) && !ctx.has_bug(PlantedBug::SkipShareDigestCheck)
        {
            return Err(Rejected::DigestMismatch);
        }
        self.collected.insert(from.clone(), share);
        Ok(())
    }

    /// Whether at least the threshold of shares is held.
    pub(crate) fn is_complete(&self) -> bool {
        self.collected.len() >= usize::from(self.config.threshold.0)
    }

    /// Exactly a threshold of collected shares, in member order.
    pub(crate) fn threshold_shares(&self) -> Vec<Share> {
        self.collected.values().take(usize::from(self.config.threshold.0)).cloned().collect()
    }

    /// Whether `peer` is a member whose share is still missing.
    fn wants(&self, peer: &BaseboardId) -> bool {
        self.config.is_member(peer) && !self.collected.contains_key(peer)
    }

    /// Asks `peer` for its share if it is still missing.
    pub(crate) fn request_from(&self, ctx: &mut NodeCtx, peer: &BaseboardId) {
        if peer != ctx.id() && self.wants(peer) {
            ctx.send(peer.clone(), self.config.rack_id, PeerMsgKind::GetShare(self.config.epoch));
        }
    }

    /// Asks every connected member whose share is missing.
    pub(crate) fn request_from_connected(&self, ctx: &mut NodeCtx) {
        let peers: Vec<BaseboardId> = ctx.connected().iter().cloned().collect();
        for peer in &peers {
            self.request_from(ctx, peer);
        }
    }
}

/// Logs a rejected share.
fn log_rejected(role: &'static str, from: &BaseboardId, epoch: Epoch, why: Rejected) {
    match why {
        Rejected::DigestMismatch | Rejected::BadLength | Rejected::NotMember => {
            tracing::warn!(role, %from, %epoch, ?why, "share rejected");
        }
        Rejected::WrongEpoch | Rejected::Duplicate => {
            tracing::debug!(role, %from, %epoch, ?why, "share ignored");
        }
    }
}
