//! The node role: the protocol as one sled runs it.
//!
//! A [`Node`] holds only in-memory state (coordination, key-share
//! computation, the rack-secret loader); everything durable or outgoing is in
//! the [`NodeCtx`] its embedder owns. Every method takes `&mut NodeCtx`; after
//! each call the embedder persists the state if it changed and only then
//! sends the queued envelopes (see [`NodeCtx`]):
//!
//! ```
//! # use trust_quorum::node::{Node, NodeCtx};
//! # use rand_chacha::ChaCha20Rng; use rand_core::SeedableRng;
//! # let id: tq_types::BaseboardId = "PART:1".parse().unwrap();
//! # let mut disk = Vec::new();
//! let mut ctx = NodeCtx::new(id, ChaCha20Rng::seed_from_u64(1));
//! let mut node = Node::new(&mut ctx);
//! let peer: tq_types::BaseboardId = "PART:2".parse().unwrap();
//! node.on_connect(&mut ctx, peer);                      // 1. one call
//! if ctx.take_persistent_state_changed() {              // 2. persist
//!     disk = ctx.persistent_state().encode().unwrap();
//! }
//! for envelope in ctx.drain_envelopes().unwrap() {      // 3. then send
//!     // network.send(envelope)
//! #   let _ = envelope;
//! }
//! # let _ = disk;
//! ```

mod coordinator;
mod ctx;
mod key_share;
mod persistent;
mod secret_loader;
mod share_collector;
mod validate;

use tq_types::{
    Alarm, BaseboardId, CommitError, CommitRequest, CommitStatus, Configuration, CoordinatorStatus,
    Epoch, ExpungedMetadata, LoadRackSecretError, NodeStatus, PeerMsg, PeerMsgKind,
    PrepareAndCommitError, PrepareAndCommitRequest, RackId, RackIdMismatch, ReconfigurationError,
    ReconfigureMsg, Share,
};

use self::coordinator::{Coordinator, Progress};
use self::key_share::{Computation, KeyShareComputer};
use self::secret_loader::SecretLoader;
use self::validate::{ValidatedReconfigureMsg, check_config};
use crate::crypto::{self, RackSecret};
use crate::planted::PlantedBug;

pub use self::ctx::{NodeCtx, NodeRng, PersistFirst};
pub use self::persistent::{MAX_PERSISTENT_STATE_LEN, PersistentState};

/// One sled's protocol state machine (in-memory part).
///
/// Create it with [`Node::new`] at start-up, also after a restart with the
/// persisted state loaded into the [`NodeCtx`]: coordination and share
/// computation are never persisted and simply start over when the control
/// plane asks again.
#[derive(Default)]
pub struct Node {
    coordinator: Option<Coordinator>,
    key_share_computer: Option<KeyShareComputer>,
    secret_loader: SecretLoader,
}

impl core::fmt::Debug for Node {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Node")
            .field("coordinating", &self.coordinator.as_ref().map(Coordinator::epoch))
            .field(
                "computing_share",
                &self.key_share_computer.as_ref().map(KeyShareComputer::epoch),
            )
            .field("loading", &self.secret_loader.collecting())
            .finish()
    }
}

impl Node {
    /// A node with no in-memory state, for the node whose durable state is
    /// in `ctx`.
    pub fn new(ctx: &mut NodeCtx) -> Self {
        tracing::debug!(node = %ctx.id(), "node started");
        Self::default()
    }

    // ---- control-plane requests ----

    /// Starts coordinating a new configuration (docs/protocol.md section 3.3).
    ///
    /// On success the node is coordinating: it either prepared at once (a
    /// first configuration) or is collecting shares of the last committed
    /// configuration. An identical repeat of the request being coordinated
    /// is accepted without change. Persist and send as usual afterwards.
    pub fn coordinate_reconfiguration(
        &mut self,
        ctx: &mut NodeCtx,
        msg: ReconfigureMsg,
    ) -> Result<(), ReconfigurationError> {
        if let Some(c) = &self.coordinator {
            if c.request().msg() == &msg {
                tracing::debug!(node = %ctx.id(), epoch = %msg.epoch, "repeated reconfigure");
                return Ok(());
            }
            if msg.epoch <= c.epoch() {
                return Err(ReconfigurationError::AlreadyCoordinating {
                    coordinating: c.epoch(),
                    requested: msg.epoch,
                });
            }
        }
        let epoch = msg.epoch;
        let request = ValidatedReconfigureMsg::validate(ctx.id(), ctx.persistent_state(), msg)?;
        self.key_share_computer = None;
        self.coordinator = None;
        self.coordinator = Coordinator::start(ctx, request);
        if self.coordinator.is_none() {
            return Err(ReconfigurationError::CoordinationFailed { epoch });
        }
        Ok(())
    }

    /// Commits a prepared epoch (docs/protocol.md section 3.3). Answer the control
    /// plane only after persisting.
    pub fn commit_configuration(
        &mut self,
        ctx: &mut NodeCtx,
        req: CommitRequest,
    ) -> Result<CommitStatus, CommitError> {
        let state = ctx.persistent_state();
        if let Some(ex) = state.expunged() {
            return Err(CommitError::Expunged { epoch: ex.epoch, from: ex.from.clone() });
        }
        if let Some(expected) = state.rack_id() {
            if expected != req.rack_id {
                return Err(CommitError::RackIdMismatch(RackIdMismatch {
                    expected,
                    got: req.rack_id,
                }));
            }
        }
        if state.latest_committed_epoch().is_some_and(|l| l >= req.epoch) {
            return Ok(commit_status(state, req.epoch));
        }
        if !state.is_prepared(req.epoch) {
            return Err(CommitError::NotPrepared(req.epoch));
        }
        ctx.update_persistent(|p| (p.insert_commit(req.epoch), ()));
        tracing::info!(node = %ctx.id(), epoch = %req.epoch, "committed");
        self.after_commit(req.epoch);
        Ok(CommitStatus::Committed)
    }

    /// Commits a configuration whose prepare this node never acknowledged
    /// (docs/protocol.md section 3.3): stores it and starts computing its share.
    /// Answer the control plane only after persisting.
    pub fn prepare_and_commit(
        &mut self,
        ctx: &mut NodeCtx,
        req: PrepareAndCommitRequest,
    ) -> Result<CommitStatus, PrepareAndCommitError> {
        let state = ctx.persistent_state();
        if let Some(ex) = state.expunged_for(req.config.epoch) {
            return Err(PrepareAndCommitError::Expunged { epoch: ex.epoch, from: ex.from.clone() });
        }
        if let Some(expected) = state.rack_id() {
            if expected != req.config.rack_id {
                return Err(PrepareAndCommitError::RackIdMismatch(RackIdMismatch {
                    expected,
                    got: req.config.rack_id,
                }));
            }
        }
        check_config(&req.config).map_err(PrepareAndCommitError::Invalid)?;
        self.learn_committed(ctx, req.config, None)
    }

    /// What the control plane's poll of a coordinator sees: `None` when not
    /// coordinating.
    pub fn coordinator_status(&self) -> Option<CoordinatorStatus> {
        self.coordinator.as_ref().map(Coordinator::status)
    }

    /// Loads the rack secret of `epoch` (docs/protocol.md section 4.6). `Ok(None)`
    /// means shares are being collected: call again after more messages
    /// arrived.
    pub fn load_rack_secret(
        &mut self,
        ctx: &mut NodeCtx,
        epoch: Epoch,
    ) -> Result<Option<RackSecret>, LoadRackSecretError> {
        self.secret_loader.load(ctx, epoch)
    }

    /// Forgets every cached secret and any collection in progress.
    pub fn clear_secrets(&mut self) {
        self.secret_loader.clear();
    }

    /// The node's status.
    pub fn status(&self, ctx: &NodeCtx) -> NodeStatus {
        let state = ctx.persistent_state();
        NodeStatus {
            id: ctx.id().clone(),
            rack_id: state.rack_id(),
            latest_config: state.latest_config().map(|c| c.epoch),
            latest_committed: state.latest_committed_epoch(),
            expunged: state.expunged().cloned(),
            coordinating: self.coordinator.as_ref().map(Coordinator::epoch),
            computing_share: self.key_share_computer.as_ref().map(KeyShareComputer::epoch),
            connected: ctx.connected().clone(),
            alarms: ctx.alarms().to_vec(),
        }
    }

    // ---- connections ----

    /// A connection to `peer` came up: re-sends whatever the coordinator,
    /// the key-share computer and the secret loader still need from it.
    /// An expunged node only records the connection, for use if it is
    /// re-admitted.
    pub fn on_connect(&mut self, ctx: &mut NodeCtx, peer: BaseboardId) {
        if peer == *ctx.id() {
            return;
        }
        ctx.add_connection(peer.clone());
        if ctx.persistent_state().expunged().is_some() {
            return;
        }
        if let Some(c) = &self.coordinator {
            c.on_connect(ctx, &peer);
        }
        if let Some(k) = &self.key_share_computer {
            k.on_connect(ctx, &peer);
        }
        self.secret_loader.on_connect(ctx, &peer);
    }

    /// The connection to `peer` went down.
    pub fn on_disconnect(&mut self, ctx: &mut NodeCtx, peer: &BaseboardId) {
        ctx.remove_connection(peer);
    }

    // ---- peer messages ----

    /// Handles a message from `from` received over an authenticated link.
    /// Stale, duplicated or malformed messages are ignored with a tracing
    /// event; states that should be impossible raise alarms.
    pub fn handle(&mut self, ctx: &mut NodeCtx, from: BaseboardId, msg: PeerMsg) {
        let state = ctx.persistent_state();
        if let Some(ex) = state.expunged() {
            // Only a configuration newer than the expungement, which may
            // re-admit the node, gets through (docs/protocol.md section 4.8).
            let newer = match &msg.kind {
                PeerMsgKind::Prepare { config, .. } | PeerMsgKind::CommitAdvance(config) => {
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
            PeerMsgKind::PrepareAck(epoch) => match &mut self.coordinator {
                Some(c) => c.on_prepare_ack(&from, epoch),
                None => tracing::debug!(%from, %epoch, "prepare ack ignored: not coordinating"),
            },
            PeerMsgKind::GetShare(epoch) => self.handle_get_share(ctx, from, rack_id, epoch),
            PeerMsgKind::Share { epoch, share } => self.handle_share(ctx, from, epoch, share),
            PeerMsgKind::CommitAdvance(config) => {
                self.handle_commit_advance(ctx, from, rack_id, config)
            }
            PeerMsgKind::Expunged(epoch) => self.handle_expunged(ctx, from, epoch),
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
        let commit_now = self.key_share_computer.as_ref().is_some_and(|k| k.epoch() == epoch);
        ctx.update_persistent(|p| {
            let c = p.insert_member_config(config);
            let s = p.insert_share(epoch, share);
            let k = commit_now && p.insert_commit(epoch);
            (c || s || k, ())
        });
        if commit_now {
            self.key_share_computer = None;
        }
        if self.coordinator.as_ref().is_some_and(|c| c.epoch() < epoch) {
            tracing::info!(node = %me, %epoch, "newer prepare cancels own coordination");
            self.coordinator = None;
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
        let state = ctx.persistent_state();
        if let Some(latest) = state.latest_committed_config().filter(|c| c.epoch > epoch) {
            let kind = if latest.is_member(&from) {
                PeerMsgKind::CommitAdvance(latest.clone())
            } else {
                PeerMsgKind::Expunged(latest.epoch)
            };
            ctx.send(from, rack_id, kind);
            return;
        }
        if let Some(config) = state.config(epoch) {
            if !config.is_member(&from) {
                ctx.send(from, rack_id, PeerMsgKind::Expunged(epoch));
                return;
            }
        }
        match state.share(epoch).cloned() {
            Some(share) => ctx.send(from, rack_id, PeerMsgKind::Share { epoch, share }),
            None => tracing::debug!(node = %ctx.id(), %from, %epoch, "no share to give"),
        }
    }

    fn handle_share(&mut self, ctx: &mut NodeCtx, from: BaseboardId, epoch: Epoch, share: Share) {
        if let Some(c) = self.coordinator.as_mut().filter(|c| c.is_collecting(epoch)) {
            if c.on_share(ctx, &from, epoch, share.clone()) == Progress::Failed {
                self.coordinator = None;
            }
        } else if let Some(k) = self.key_share_computer.as_mut().filter(|k| k.epoch() == epoch) {
            match k.on_share(ctx, &from, epoch, share.clone()) {
                Computation::Pending => {}
                Computation::Committed => {
                    self.key_share_computer = None;
                    self.after_commit(epoch);
                }
                Computation::Failed => self.key_share_computer = None,
            }
        }
        self.secret_loader.on_share(ctx, &from, epoch, share);
    }

    fn handle_commit_advance(
        &mut self,
        ctx: &mut NodeCtx,
        from: BaseboardId,
        rack_id: RackId,
        config: Configuration,
    ) {
        let epoch = config.epoch;
        if config.rack_id != rack_id {
            tracing::warn!(%from, %epoch, "commit advance with mismatched rack ids ignored");
            return;
        }
        if let Err(why) = check_config(&config) {
            tracing::warn!(%from, %epoch, %why, "invalid commit advance ignored");
            return;
        }
        if let Err(err) = self.learn_committed(ctx, config, Some(from.clone())) {
            tracing::warn!(%from, %epoch, %err, "commit advance not applied");
        }
    }

    fn handle_expunged(&mut self, ctx: &mut NodeCtx, from: BaseboardId, epoch: Epoch) {
        let Some(latest) = ctx.persistent_state().latest_config().map(|c| c.epoch) else {
            tracing::debug!(%from, %epoch, "expunged notice ignored: no configuration");
            return;
        };
        if epoch < latest {
            tracing::debug!(%from, %epoch, %latest, "stale expunged notice ignored");
            return;
        }
        tracing::warn!(node = %ctx.id(), %from, %epoch, "expunged");
        let meta = ExpungedMetadata { epoch, from };
        ctx.update_persistent(|p| (p.set_expunged(meta), ()));
        self.coordinator = None;
        self.key_share_computer = None;
        self.secret_loader.clear();
    }

    /// Learning that `config` is committed, from the control plane
    /// (prepare-and-commit, `from == None`) or a peer (commit advance).
    fn learn_committed(
        &mut self,
        ctx: &mut NodeCtx,
        config: Configuration,
        from: Option<BaseboardId>,
    ) -> Result<CommitStatus, PrepareAndCommitError> {
        let me = ctx.id().clone();
        let epoch = config.epoch;
        let state = ctx.persistent_state();
        if !config.is_member(&me) {
            return Err(PrepareAndCommitError::NotAMember(epoch));
        }
        if state.latest_committed_epoch().is_some_and(|l| l >= epoch) {
            return Ok(commit_status(state, epoch));
        }
        if let Some(stored) = state.config(epoch) {
            if *stored != config {
                ctx.raise_alarm(Alarm::MismatchedConfigurations { epoch, from });
                return Err(PrepareAndCommitError::ConflictingConfiguration(epoch));
            }
        }
        let prepared = state.is_prepared(epoch);
        ctx.update_persistent(|p| {
            let changed = if prepared {
                p.insert_commit(epoch)
            } else {
                p.insert_member_config(config.clone())
            };
            (changed, ())
        });
        if prepared {
            tracing::info!(node = %me, %epoch, "committed (was prepared)");
        }
        if self.coordinator.as_ref().is_some_and(|c| c.epoch() <= epoch) {
            self.coordinator = None;
        }
        match self.key_share_computer.as_ref().map(KeyShareComputer::epoch) {
            Some(k) if k > epoch => return Ok(commit_status(ctx.persistent_state(), epoch)),
            Some(k) if k == epoch => {
                if prepared {
                    self.key_share_computer = None;
                }
                return Ok(commit_status(ctx.persistent_state(), epoch));
            }
            Some(_) => self.key_share_computer = None,
            None => {}
        }
        if prepared {
            self.after_commit(epoch);
        } else if let Some(c) = &self.coordinator {
            // Coordinating a later epoch while computing a share of an
            // earlier one cannot arise legitimately; refuse it.
            tracing::warn!(node = %me, %epoch, coordinating = %c.epoch(),
                "not computing a share while coordinating a later epoch");
        } else {
            self.key_share_computer = Some(KeyShareComputer::start(ctx, config));
        }
        Ok(commit_status(ctx.persistent_state(), epoch))
    }

    /// Drops in-memory work that a commit of `epoch` made moot.
    fn after_commit(&mut self, epoch: Epoch) {
        if self.coordinator.as_ref().is_some_and(|c| c.epoch() <= epoch) {
            self.coordinator = None;
        }
        if self.key_share_computer.as_ref().is_some_and(|k| k.epoch() <= epoch) {
            self.key_share_computer = None;
        }
    }
}

fn commit_status(state: &PersistentState, epoch: Epoch) -> CommitStatus {
    if state.commits().contains(&epoch) { CommitStatus::Committed } else { CommitStatus::Pending }
}
