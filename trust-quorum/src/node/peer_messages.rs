//! Messages from peers (docs/protocol.md section 3.2): prepares, acks,
//! share requests and shares, commit advances and expunged notices.

use tq_types::{
    Alarm, BaseboardId, CommittedConfig, Configuration, Epoch, ExpungedMetadata, PeerMsg,
    PeerMsgKind, RackId, Share,
};

use super::activity::Activity;
use super::coordinator::Progress;
use super::key_share::Computation;
use super::persistent::MAX_ID_FIELD_LEN;
use super::validate::{check_config, id_field_len};
use super::{Node, NodeCtx};
use crate::crypto;
use crate::crypto::authority::{verify_committed, verify_config};
use crate::planted::PlantedBug;

impl Node {
    /// Handles a message from `from` received over an authenticated link.
    /// Stale, duplicated or malformed messages are ignored with a tracing
    /// event; states that should be impossible raise alarms.
    pub fn handle(&mut self, ctx: &mut NodeCtx, from: BaseboardId, msg: PeerMsg) {
        let state = ctx.persistent_state();
        if let Some(ex) = state.expunged() {
            // Only a configuration newer than the expungement, which may
            // re-admit the node, gets through (docs/protocol.md section 4.8).
            let newer = match &msg.kind {
                PeerMsgKind::Prepare { config, .. }
                | PeerMsgKind::CommitAdvance(CommittedConfig { config, .. }) => {
                    config.epoch > ex.epoch
                }
                _ => false,
            };
            if !newer {
                tracing::debug!(node = %ctx.id(), %from, msg = msg.kind.name(), "expunged: dropped");
                return;
            }
        }
        if from == *ctx.id() {
            tracing::warn!(node = %ctx.id(), msg = msg.kind.name(), "message from self dropped");
            return;
        }
        if let Some(mine) = state.rack_id() {
            if mine != msg.rack_id {
                tracing::warn!(node = %ctx.id(), %from, rack = %msg.rack_id, "wrong rack: dropped");
                return;
            }
        }
        let rack_id = msg.rack_id;
        match msg.kind {
            PeerMsgKind::Prepare { config, share } => {
                self.handle_prepare(ctx, from, rack_id, config, share)
            }
            PeerMsgKind::PrepareAck(epoch) => match &mut self.activity {
                Activity::Coordinating(c) => c.on_prepare_ack(&from, epoch),
                _ => tracing::debug!(%from, %epoch, "prepare ack ignored: not coordinating"),
            },
            PeerMsgKind::GetShare(epoch) => self.handle_get_share(ctx, from, rack_id, epoch),
            PeerMsgKind::Share { epoch, share } => self.handle_share(ctx, from, epoch, share),
            PeerMsgKind::CommitAdvance(committed) => {
                self.handle_commit_advance(ctx, from, rack_id, committed)
            }
            PeerMsgKind::Expunged(committed) => self.handle_expunged(ctx, from, rack_id, committed),
        }
    }

    fn handle_prepare(
        &mut self,
        ctx: &mut NodeCtx,
        from: BaseboardId,
        rack_id: RackId,
        config: Configuration,
        share: Share,
    ) {
        let me = ctx.id().clone();
        let epoch = config.epoch;
        let state = ctx.persistent_state();
        if state.latest_committed_epoch().is_some_and(|l| l > epoch)
            && !ctx.has_bug(PlantedBug::AckStalePrepare)
        {
            tracing::debug!(node = %me, %from, %epoch, "stale prepare ignored");
            return;
        }
        if config.rack_id != rack_id {
            tracing::warn!(node = %me, %from, %epoch, "prepare with mismatched rack ids ignored");
            return;
        }
        let Some(digest) = config.members.get(&me) else {
            tracing::warn!(node = %me, %from, %epoch, "prepare for a non-member ignored");
            return;
        };
        if from != config.coordinator {
            tracing::warn!(node = %me, %from, %epoch, "prepare not from its coordinator ignored");
            return;
        }
        if let Err(why) = check_config(&config) {
            tracing::warn!(node = %me, %from, %epoch, %why, "invalid prepare ignored");
            return;
        }
        if let Err(why) = verify_config(ctx.authority(), &config) {
            if !ctx.has_bug(PlantedBug::SkipPrepareSignature) {
                tracing::warn!(node = %me, %from, %epoch, %why, "unauthorized prepare ignored");
                return;
            }
        }
        let stale = state.latest_committed_epoch().is_some_and(|l| l > epoch);
        let planted_stale_ack = stale && ctx.has_bug(PlantedBug::AckStalePrepare);
        if !state.would_keep(epoch) && !planted_stale_ack {
            // A newer configuration that does not build on this one is
            // stored: acknowledging would promise a share this node drops.
            tracing::debug!(node = %me, %from, %epoch, "superseded prepare ignored");
            return;
        }
        if share.as_bytes().len() != crypto::SHARE_LEN || !crypto::share_matches(&share, digest) {
            tracing::warn!(node = %me, %from, %epoch, "prepare with a bad share ignored");
            return;
        }
        if let Some(stored) = state.config(epoch) {
            if *stored != config {
                ctx.raise_alarm(Alarm::MismatchedConfigurations { epoch, from: Some(from) });
                return;
            }
        }
        // A key-share computer for this epoch means the epoch is known to be
        // committed: with the share in hand, commit in the same write.
        let commit_now = self.activity.computing_share() == Some(epoch);
        ctx.update_persistent(|p| {
            let c = p.insert_member_config(config);
            let s = p.insert_share(epoch, share);
            let k = commit_now && p.insert_commit(epoch);
            (c || s || k, ())
        });
        if commit_now {
            self.activity = Activity::Idle;
        }
        if self.activity.coordinating().is_some_and(|c| c < epoch) {
            tracing::info!(node = %me, %epoch, "newer prepare cancels own coordination");
            self.activity = Activity::Idle;
        }
        ctx.send(from, rack_id, PeerMsgKind::PrepareAck(epoch));
    }

    fn handle_get_share(
        &mut self,
        ctx: &mut NodeCtx,
        from: BaseboardId,
        rack_id: RackId,
        epoch: Epoch,
    ) {
        let silent = ctx.has_bug(PlantedBug::NeverTellExpunged);
        let state = ctx.persistent_state();
        let latest = state.latest_committed();
        if let Some(latest) = latest.filter(|c| c.config.epoch > epoch) {
            let kind = if latest.config.is_member(&from) {
                PeerMsgKind::CommitAdvance(latest)
            } else if silent {
                return;
            } else {
                PeerMsgKind::Expunged(latest)
            };
            ctx.send(from, rack_id, kind);
            return;
        }
        if state.config(epoch).is_some_and(|c| !c.is_member(&from))
            && !ctx.has_bug(PlantedBug::ShareToNonMember)
        {
            // Only a committed configuration that leaves the asker out,
            // with its certificate, may tell it it was removed.
            match state.latest_committed().filter(|c| !c.config.is_member(&from)) {
                Some(latest) if !silent => ctx.send(from, rack_id, PeerMsgKind::Expunged(latest)),
                _ => {
                    tracing::debug!(node = %ctx.id(), %from, %epoch, "share request from a non-member ignored")
                }
            }
            return;
        }
        if state.share(epoch).is_none() {
            tracing::debug!(node = %ctx.id(), %from, %epoch, "no share to give");
            return;
        }
        // A share that fails its digest raised an alarm and is not sent.
        if let Some(share) = ctx.checked_own_share(epoch) {
            ctx.send(from, rack_id, PeerMsgKind::Share { epoch, share });
        }
    }

    fn handle_share(&mut self, ctx: &mut NodeCtx, from: BaseboardId, epoch: Epoch, share: Share) {
        let (mut stop, mut committed) = (false, false);
        match &mut self.activity {
            Activity::Coordinating(c) if c.is_collecting(epoch) => {
                stop = c.on_share(ctx, &from, epoch, share.clone()) == Progress::Failed;
            }
            Activity::ComputingShare(k) if k.epoch() == epoch => {
                match k.on_share(ctx, &from, epoch, share.clone()) {
                    Computation::Pending => {}
                    Computation::Committed => (stop, committed) = (true, true),
                    Computation::Failed => stop = true,
                }
            }
            _ => {}
        }
        if stop {
            self.activity = Activity::Idle;
        }
        if committed {
            self.after_commit(epoch);
        }
        self.secret_loader.on_share(ctx, &from, epoch, share);
    }

    fn handle_commit_advance(
        &mut self,
        ctx: &mut NodeCtx,
        from: BaseboardId,
        rack_id: RackId,
        committed: CommittedConfig,
    ) {
        let Some(committed) = checked_committed(ctx, &from, rack_id, committed, "commit advance")
        else {
            return;
        };
        let epoch = committed.config.epoch;
        if let Err(err) = self.learn_committed(ctx, committed, Some(from.clone())) {
            tracing::warn!(%from, %epoch, %err, "commit advance not applied");
        }
    }

    fn handle_expunged(
        &mut self,
        ctx: &mut NodeCtx,
        from: BaseboardId,
        rack_id: RackId,
        committed: CommittedConfig,
    ) {
        let epoch = committed.config.epoch;
        if ctx.has_bug(PlantedBug::AcceptAnyExpunged) {
            let meta = ExpungedMetadata { epoch, from, certificate: committed.certificate };
            ctx.update_persistent(|p| (p.set_expunged(meta), ()));
            self.activity = Activity::Idle;
            self.secret_loader.clear();
            return;
        }
        let Some(committed) = checked_committed(ctx, &from, rack_id, committed, "expunged notice")
        else {
            return;
        };
        if committed.config.is_member(ctx.id()) {
            tracing::warn!(%from, %epoch, "expunged notice for a configuration that lists us ignored");
            return;
        }
        let Some(latest) = ctx.persistent_state().latest_config().map(|c| c.epoch) else {
            tracing::debug!(%from, %epoch, "expunged notice ignored: no configuration");
            return;
        };
        if epoch < latest {
            // Older than a configuration that lists this node, so it stays
            // a member; but a share of an epoch below a committed one that
            // left it out is moot, and members that moved on never hand it
            // out: stop computing it rather than wait forever.
            if self.activity.computing_share().is_some_and(|k| k < epoch) {
                tracing::info!(%from, %epoch, "share computation made moot by a later commit");
                self.activity = Activity::Idle;
            }
            tracing::debug!(%from, %epoch, %latest, "stale expunged notice ignored");
            return;
        }
        if id_field_len(&from) > MAX_ID_FIELD_LEN {
            // The marker keeps the sender; the state must stay decodable.
            tracing::warn!(%epoch, "expunged notice from an oversized id ignored");
            return;
        }
        tracing::warn!(node = %ctx.id(), %from, %epoch, "expunged");
        let meta = ExpungedMetadata { epoch, from, certificate: committed.certificate };
        ctx.update_persistent(|p| (p.set_expunged(meta), ()));
        self.activity = Activity::Idle;
        self.secret_loader.clear();
    }
}

/// A committed configuration from a peer (`what` names the message, for
/// logs), if it is for the envelope's rack, well formed and certified by
/// the authority; otherwise the message is dropped with a warning.
fn checked_committed(
    ctx: &NodeCtx,
    from: &BaseboardId,
    rack_id: RackId,
    committed: CommittedConfig,
    what: &str,
) -> Option<CommittedConfig> {
    let epoch = committed.config.epoch;
    if committed.config.rack_id != rack_id {
        tracing::warn!(%from, %epoch, what, "mismatched rack ids: ignored");
        return None;
    }
    if let Err(why) = check_config(&committed.config) {
        tracing::warn!(%from, %epoch, %why, what, "invalid: ignored");
        return None;
    }
    if let Err(why) = verify_committed(ctx.authority(), &committed) {
        tracing::warn!(%from, %epoch, %why, what, "unauthorized: ignored");
        return None;
    }
    Some(committed)
}
