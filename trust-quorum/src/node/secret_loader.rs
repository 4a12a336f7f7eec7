//! Loading and caching rack secrets (docs/protocol.md section 4.6).
//!
//! Shares are collected only for the latest committed configuration; older
//! secrets come from opening the secrets it seals.

use std::collections::BTreeMap;

use tq_types::{Alarm, BaseboardId, Epoch, LoadRackSecretError, Share};

use super::ctx::NodeCtx;
use super::share_collector::ShareCollector;
use crate::crypto::{self, RackSecret};

/// The rack-secret cache and the collector that fills it.
#[derive(Default)]
pub(crate) struct SecretLoader {
    cache: BTreeMap<Epoch, RackSecret>,
    collector: Option<ShareCollector>,
}

impl SecretLoader {
    /// Returns the secret of `epoch`, `Ok(None)` while shares are being
    /// collected, or why it cannot be had.
    pub(crate) fn load(
        &mut self,
        ctx: &mut NodeCtx,
        epoch: Epoch,
    ) -> Result<Option<RackSecret>, LoadRackSecretError> {
        let state = ctx.persistent_state();
        if let Some(ex) = state.expunged() {
            return Err(LoadRackSecretError::Expunged { epoch: ex.epoch });
        }
        if let Some(secret) = self.cache.get(&epoch) {
            return Ok(Some(secret.clone()));
        }
        let latest = state
            .latest_committed_config()
            .ok_or(LoadRackSecretError::NoCommittedConfigurations)?;
        if epoch > latest.epoch {
            return Err(LoadRackSecretError::NotCommitted(epoch));
        }
        if self.cache.contains_key(&latest.epoch) {
            return Err(LoadRackSecretError::NotAvailable(epoch));
        }
        let latest_epoch = latest.epoch;
        match &self.collector {
            Some(c) if c.epoch() == latest_epoch => return Ok(None),
            Some(c) if c.epoch() > latest_epoch => {
                ctx.raise_alarm(Alarm::CommittedConfigurationLost {
                    latest_committed_epoch: latest_epoch,
                    collecting_epoch: c.epoch(),
                });
                return Err(LoadRackSecretError::Alarm(epoch));
            }
            _ => {}
        }
        let latest = latest.clone();
        // The own share is checked against its digest first; a corrupt one
        // raised an alarm and the K shares must all come from peers.
        let own = ctx.checked_own_share(latest_epoch).map(|s| (ctx.id().clone(), s));
        let collector = ShareCollector::new(latest, own);
        collector.request_from_connected(ctx);
        self.collector = Some(collector);
        // A threshold of one own share cannot happen (K >= 2), but finish
        // uniformly if it ever could.
        self.finish_if_complete(ctx);
        Ok(self.cache.get(&epoch).cloned())
    }

    /// Empties the cache and drops any collection.
    pub(crate) fn clear(&mut self) {
        self.cache.clear();
        self.collector = None;
    }

    /// The epoch shares are being collected for, if any.
    pub(crate) fn collecting(&self) -> Option<Epoch> {
        self.collector.as_ref().map(ShareCollector::epoch)
    }

    /// Asks a newly connected peer for its share if it is still missing.
    pub(crate) fn on_connect(&self, ctx: &mut NodeCtx, peer: &BaseboardId) {
        if let Some(c) = &self.collector {
            c.request_from(ctx, peer);
        }
    }

    /// A share from `from` arrived.
    pub(crate) fn on_share(
        &mut self,
        ctx: &mut NodeCtx,
        from: &BaseboardId,
        epoch: Epoch,
        share: Share,
    ) {
        let Some(c) = &mut self.collector else {
            return;
        };
        if !c.accept(ctx, "secret_loader", from, epoch, share) {
            return;
        }
        self.finish_if_complete(ctx);
    }

    /// With K shares: rebuild the latest secret, open the secrets it seals
    /// and replace the cache with all of them.
    fn finish_if_complete(&mut self, ctx: &mut NodeCtx) {
        let Some(c) = self.collector.take_if(|c| c.is_complete()) else {
            return;
        };
        let config = c.config();
        let Ok(secret) = crypto::combine(&c.threshold_shares()) else {
            ctx.raise_alarm(Alarm::RackSecretReconstructionFailed { epoch: config.epoch });
            return;
        };
        let mut secrets = match &config.encrypted_rack_secrets {
            None => BTreeMap::new(),
            Some(sealed) => match crypto::open(sealed, config.rack_id, config.epoch, &secret) {
                Ok(prior) => prior,
                Err(_) => {
                    ctx.raise_alarm(Alarm::RackSecretDecryptionFailed { epoch: config.epoch });
                    return;
                }
            },
        };
        secrets.insert(config.epoch, secret);
        self.cache = secrets;
    }
}
