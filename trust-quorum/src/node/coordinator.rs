//! The coordinator of one epoch (docs/protocol.md sections 4.1 and 4.2): builds
//! the new configuration, collects shares of the last committed one, seals
//! the prior secrets, distributes prepares and counts acknowledgements.
//!
//! Its state lives in memory only: a restarted coordinator forgets its
//! coordination and the control plane aborts and retries.

use std::collections::{BTreeMap, BTreeSet};

use tq_types::{
    Alarm, BaseboardId, Configuration, CoordinatorStatus, Epoch, PeerMsgKind, Share,
    StateCorruption,
};

use super::ctx::NodeCtx;
use super::share_collector::ShareCollector;
use super::validate::ValidatedReconfigureMsg;
use crate::crypto::{self, RackSecret};

/// Where the coordinator is.
enum Phase {
    /// Gathering K shares of the last committed configuration while holding
    /// the freshly split new shares (memory only).
    CollectShares { old: ShareCollector, new_shares: BTreeMap<BaseboardId, Share> },
    /// The configuration and own share are persisted; prepares are out.
    Prepare {
        /// Members that have not acknowledged, with their shares.
        pending: BTreeMap<BaseboardId, Share>,
        /// Members that acknowledged, the coordinator included.
        acks: BTreeSet<BaseboardId>,
    },
}

/// Whether a coordinator can go on after an input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Still coordinating.
    Continue,
    /// An alarm was raised; the coordination must be dropped.
    Failed,
}

/// The in-memory state of a node coordinating one epoch.
pub(crate) struct Coordinator {
    request: ValidatedReconfigureMsg,
    /// The new configuration: digests from the start, sealed secrets once
    /// the old secret is rebuilt.
    config: Configuration,
    phase: Phase,
}

impl Coordinator {
    /// Generates the new secret and shares and either prepares at once (a
    /// rack's first configuration) or starts collecting old shares. Returns
    /// `None` after raising an alarm if the node's own state makes that
    /// impossible.
    pub(crate) fn start(ctx: &mut NodeCtx, request: ValidatedReconfigureMsg) -> Option<Self> {
        let msg = request.msg();
        let me = ctx.id().clone();
        let shares = {
            let secret = RackSecret::generate(ctx.rng());
            // Validation bounded K and N, so splitting cannot fail.
            let split = crypto::split(&secret, msg.threshold, msg.members.len(), ctx.rng());
            debug_assert!(split.is_ok(), "split of a validated request failed");
            split.ok()?
            // The generated secret is dropped (and wiped) here: it is
            // recovered from the shares when needed.
        };
        let new_shares: BTreeMap<BaseboardId, Share> =
            msg.members.iter().cloned().zip(shares).collect();
        let config = Configuration {
            rack_id: msg.rack_id,
            epoch: msg.epoch,
            coordinator: me.clone(),
            members: new_shares
                .iter()
                .map(|(id, s)| (id.clone(), crypto::share_digest(s)))
                .collect(),
            threshold: msg.threshold,
            encrypted_rack_secrets: None,
            reconfigure: Box::new(request.signed().clone()),
        };
        let old = match msg.last_committed_epoch {
            None => None,
            Some(last) => {
                // Validation checked that `last` is the latest committed
                // epoch, whose configuration a valid state stores.
                let Some(old_config) = ctx.persistent_state().config(last).cloned() else {
                    ctx.raise_alarm(Alarm::CorruptState {
                        epoch: last,
                        reason: StateCorruption::CommittedConfigurationMissing,
                    });
                    return None;
                };
                // A corrupt own share raised an alarm: collect K from peers.
                let own = ctx.checked_own_share(last);
                Some(ShareCollector::new(old_config, own.map(|s| (me.clone(), s))))
            }
        };
        let mut coordinator = match old {
            None => {
                let phase = Phase::Prepare { pending: BTreeMap::new(), acks: BTreeSet::new() };
                let mut c = Self { request, config, phase };
                if c.enter_prepare(ctx, new_shares) == Progress::Failed {
                    return None;
                }
                c
            }
            Some(old) => {
                old.request_from_connected(ctx);
                Self { request, config, phase: Phase::CollectShares { old, new_shares } }
            }
        };
        if coordinator.collect_if_complete(ctx) == Progress::Failed {
            return None;
        }
        tracing::info!(node = %ctx.id(), epoch = %coordinator.epoch(), "coordinating");
        Some(coordinator)
    }

    /// The epoch being coordinated.
    pub(crate) fn epoch(&self) -> Epoch {
        self.config.epoch
    }

    /// The request this coordination serves.
    pub(crate) fn request(&self) -> &ValidatedReconfigureMsg {
        &self.request
    }

    /// What the control plane's poll sees.
    pub(crate) fn status(&self) -> CoordinatorStatus {
        let acked_prepares = match &self.phase {
            Phase::CollectShares { .. } => BTreeSet::new(),
            Phase::Prepare { acks, .. } => acks.clone(),
        };
        CoordinatorStatus { config: self.config.clone(), acked_prepares }
    }

    /// Whether the coordinator still waits for shares of `epoch`.
    pub(crate) fn is_collecting(&self, epoch: Epoch) -> bool {
        matches!(&self.phase, Phase::CollectShares { old, .. } if old.epoch() == epoch)
    }

    /// Re-sends what `peer` still owes or is owed.
    pub(crate) fn on_connect(&self, ctx: &mut NodeCtx, peer: &BaseboardId) {
        match &self.phase {
            Phase::CollectShares { old, .. } => old.request_from(ctx, peer),
            Phase::Prepare { pending, .. } => {
                if let Some(share) = pending.get(peer) {
                    self.send_prepare(ctx, peer, share);
                }
            }
        }
    }

    /// A share of the old configuration arrived.
    pub(crate) fn on_share(
        &mut self,
        ctx: &mut NodeCtx,
        from: &BaseboardId,
        epoch: Epoch,
        share: Share,
    ) -> Progress {
        let Phase::CollectShares { old, .. } = &mut self.phase else {
            tracing::debug!(%from, %epoch, "share ignored: coordinator not collecting");
            return Progress::Continue;
        };
        if !old.accept(ctx, "coordinator", from, epoch, share) {
            return Progress::Continue;
        }
        self.collect_if_complete(ctx)
    }

    /// A member acknowledged the prepare of `epoch`.
    pub(crate) fn on_prepare_ack(&mut self, from: &BaseboardId, epoch: Epoch) {
        let Phase::Prepare { pending, acks } = &mut self.phase else {
            tracing::debug!(%from, %epoch, "prepare ack ignored: not preparing");
            return;
        };
        if epoch != self.config.epoch {
            tracing::debug!(%from, %epoch, "prepare ack for another epoch ignored");
        } else if pending.remove(from).is_some() {
            acks.insert(from.clone());
        } else if acks.contains(from) {
            tracing::debug!(%from, %epoch, "duplicate prepare ack");
        } else {
            tracing::warn!(%from, %epoch, "prepare ack from a non-member ignored");
        }
    }

    /// Finishes collecting once K old shares are held: rebuilds the old
    /// secret, opens the secrets it sealed, seals them all under the new
    /// secret and enters the prepare phase.
    fn collect_if_complete(&mut self, ctx: &mut NodeCtx) -> Progress {
        let Phase::CollectShares { old, new_shares } = &mut self.phase else {
            return Progress::Continue;
        };
        if !old.is_complete() {
            return Progress::Continue;
        }
        let old_config = old.config();
        let old_epoch = old_config.epoch;
        let Ok(old_secret) = crypto::combine(&old.threshold_shares()) else {
            ctx.raise_alarm(Alarm::RackSecretReconstructionFailed { epoch: old_epoch });
            return Progress::Failed;
        };
        let mut prior = match &old_config.encrypted_rack_secrets {
            None => BTreeMap::new(),
            Some(sealed) => {
                match crypto::open(sealed, old_config.rack_id, old_epoch, &old_secret) {
                    Ok(prior) => prior,
                    Err(_) => {
                        ctx.raise_alarm(Alarm::RackSecretDecryptionFailed { epoch: old_epoch });
                        return Progress::Failed;
                    }
                }
            }
        };
        prior.insert(old_epoch, old_secret);
        let threshold = usize::from(self.config.threshold.0);
        let some_new: Vec<Share> = new_shares.values().take(threshold).cloned().collect();
        let sealed = crypto::combine(&some_new).and_then(|new_secret| {
            crypto::seal(&prior, self.config.rack_id, self.config.epoch, &new_secret, ctx.rng())
        });
        let Ok(sealed) = sealed else {
            ctx.raise_alarm(Alarm::RackSecretReconstructionFailed { epoch: self.config.epoch });
            return Progress::Failed;
        };
        self.config.encrypted_rack_secrets = Some(sealed);
        let new_shares = std::mem::take(new_shares);
        self.enter_prepare(ctx, new_shares)
    }

    /// Persists the configuration and own share, then sends prepares to the
    /// connected members.
    fn enter_prepare(
        &mut self,
        ctx: &mut NodeCtx,
        mut new_shares: BTreeMap<BaseboardId, Share>,
    ) -> Progress {
        let me = ctx.id().clone();
        let epoch = self.config.epoch;
        if let Some(stored) = ctx.persistent_state().config(epoch) {
            if *stored != self.config {
                ctx.raise_alarm(Alarm::MismatchedConfigurations { epoch, from: None });
                return Progress::Failed;
            }
        }
        let Some(own) = new_shares.remove(&me) else {
            debug_assert!(false, "coordinator is a member");
            return Progress::Failed;
        };
        let config = self.config.clone();
        ctx.update_persistent(|p| {
            let c = p.insert_member_config(config);
            let s = p.insert_share(epoch, own);
            (c || s, ())
        });
        let acks = BTreeSet::from([me]);
        self.phase = Phase::Prepare { pending: new_shares, acks };
        if let Phase::Prepare { pending, .. } = &self.phase {
            let connected: Vec<BaseboardId> = ctx.connected().iter().cloned().collect();
            for peer in &connected {
                if let Some(share) = pending.get(peer) {
                    self.send_prepare(ctx, peer, share);
                }
            }
        }
        Progress::Continue
    }

    fn send_prepare(&self, ctx: &mut NodeCtx, peer: &BaseboardId, share: &Share) {
        ctx.send(
            peer.clone(),
            self.config.rack_id,
            PeerMsgKind::Prepare { config: self.config.clone(), share: share.clone() },
        );
    }
}
