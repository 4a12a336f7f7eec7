//! The node role: the protocol as one sled runs it.
//!
//! A [`Node`] holds only in-memory state (coordination or key-share
//! computation, and the rack-secret loader); everything durable or outgoing
//! is in the [`NodeCtx`] its embedder owns. Every method takes
//! `&mut NodeCtx`. After each call the embedder takes the write the call
//! made necessary, makes it durable, and only with the resulting proof gets
//! the envelopes to send and the answers for the control plane (see
//! [`Write`]):
//!
//! ```
//! # use trust_quorum::node::{Node, NodeCtx, Write};
//! # use rand_chacha::ChaCha20Rng; use rand_core::SeedableRng;
//! # use trust_quorum::crypto::authority::Authority;
//! # let id: tq_types::BaseboardId = "PART:1".parse().unwrap();
//! # let mut disk = Vec::new();
//! # let authority = Authority::generate(&mut ChaCha20Rng::seed_from_u64(0)).public_key();
//! // `authority`: the control plane's public key, from the embedder's configuration.
//! let mut ctx = NodeCtx::new(id, authority, ChaCha20Rng::seed_from_u64(1));
//! let mut node = Node::new(&mut ctx);
//! let peer: tq_types::BaseboardId = "PART:2".parse().unwrap();
//! node.on_connect(&mut ctx, peer);                      // 1. one call
//! let mut persisted = match ctx.take_write() {          // 2. persist
//!     Write::Pending(write) => {
//!         disk = write.encode().unwrap();
//!         write.written()
//!     }
//!     Write::Nothing(persisted) => persisted,
//! };
//! for envelope in persisted.envelopes() {               // 3. then send
//!     // network.send(envelope)
//! #   let _ = envelope;
//! }
//! # let _ = disk;
//! ```

mod activity;
mod coordinator;
mod ctx;
mod key_share;
mod peer_messages;
mod persistent;
mod requests;
mod secret_loader;
mod share_collector;
mod validate;
mod write;

use tq_types::{BaseboardId, CoordinatorStatus, Epoch, LoadRackSecretError, NodeStatus};

use self::activity::Activity;
use self::coordinator::Coordinator;
use self::secret_loader::SecretLoader;
use crate::crypto::RackSecret;

pub use self::ctx::{NodeCtx, NodeRng};
pub use self::persistent::{
    InvalidPersistentState, MAX_COMMITS, MAX_CONFIGS, MAX_ID_FIELD_LEN, MAX_PERSISTENT_STATE_LEN,
    MAX_SEALED_DATA_LEN, MAX_SHARES, PERSISTENT_CHECKSUM_CONTEXT, PERSISTENT_CHECKSUM_LEN,
    PERSISTENT_FORMAT_VERSION, PersistentState, PersistentStateError, PersistentStateParts,
};
pub use self::write::{PendingWrite, Persisted, Reply, Write};

/// One sled's protocol state machine (in-memory part).
///
/// Create it with [`Node::new`] at start-up, also after a restart with the
/// persisted state loaded into the [`NodeCtx`]: coordination and share
/// computation are never persisted and simply start over when the control
/// plane asks again.
#[derive(Default)]
pub struct Node {
    activity: Activity,
    secret_loader: SecretLoader,
}

impl core::fmt::Debug for Node {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Node")
            .field("coordinating", &self.activity.coordinating())
            .field("computing_share", &self.activity.computing_share())
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

    /// What the control plane's poll of a coordinator sees: `None` when not
    /// coordinating.
    pub fn coordinator_status(&self) -> Reply<Option<CoordinatorStatus>> {
        Reply::new(self.activity.coordinator().map(Coordinator::status))
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
            coordinating: self.activity.coordinating(),
            computing_share: self.activity.computing_share(),
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
        self.activity.on_connect(ctx, &peer);
        self.secret_loader.on_connect(ctx, &peer);
    }

    /// The connection to `peer` went down.
    pub fn on_disconnect(&mut self, ctx: &mut NodeCtx, peer: &BaseboardId) {
        ctx.remove_connection(peer);
    }

    /// Drops in-memory work that a commit of `epoch` made moot.
    fn after_commit(&mut self, epoch: Epoch) {
        self.activity.stop_coordinating_up_to(epoch);
        self.activity.stop_computing_up_to(epoch);
    }
}
