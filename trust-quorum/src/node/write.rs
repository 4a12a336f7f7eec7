//! Persist before send, as types: the embedder's one step after every call
//! into a [`Node`](super::Node).
//!
//! [`NodeCtx::take_write`] says whether the call changed the persistent
//! state. If it did, the embedder gets a [`PendingWrite`], writes it durably
//! and calls [`PendingWrite::written`]; if not, it gets the proof at once.
//! Either way it ends up with a [`Persisted`] proof, and only that proof
//! releases the queued envelopes ([`Persisted::envelopes`]) and the answers
//! meant for the control plane ([`Reply::release`]). There is no other way
//! to get a `Persisted`, and it borrows the context, so no call into the
//! node can happen between the write and the release.
//!
//! ```
//! # use trust_quorum::node::{Node, NodeCtx, Write};
//! # use tq_types::{AuthoritySignature, CommitCertificate, CommitRequest, ConfigDigest, Epoch, RackId};
//! # use rand_chacha::ChaCha20Rng; use rand_core::SeedableRng;
//! # let id: tq_types::BaseboardId = "PART:1".parse().unwrap();
//! # let (rack_id, epoch) = (RackId(uuid::Uuid::nil()), Epoch(1));
//! # let signature = AuthoritySignature([0; 64]);
//! # let certificate = CommitCertificate { rack_id, epoch, config_digest: ConfigDigest([0; 32]), signature };
//! # let req = CommitRequest { rack_id, epoch, certificate };
//! # let authority = trust_quorum::crypto::authority::Authority::generate(&mut ChaCha20Rng::seed_from_u64(0));
//! # let mut disk = Vec::new();
//! let mut ctx = NodeCtx::new(id, authority.public_key(), ChaCha20Rng::seed_from_u64(1));
//! let mut node = Node::new(&mut ctx);
//! let reply = node.commit_configuration(&mut ctx, req); // 1. one call
//! let mut persisted = match ctx.take_write() {           // 2. persist
//!     Write::Pending(write) => {
//!         disk = write.encode().unwrap(); // and fsync; stop the process on failure
//!         write.written()
//!     }
//!     Write::Nothing(persisted) => persisted,
//! };
//! for envelope in persisted.envelopes() {                // 3. then send
//!     // network.send(envelope)
//! #   let _ = envelope;
//! }
//! let answer = reply.release(&persisted);                // 4. then answer
//! # let _ = (disk, answer);
//! ```
//!
//! Envelopes cannot be had without the proof:
//!
//! ```compile_fail,E0599
//! # use trust_quorum::node::NodeCtx;
//! # use rand_chacha::ChaCha20Rng; use rand_core::SeedableRng;
//! # let id: tq_types::BaseboardId = "PART:1".parse().unwrap();
//! # let authority = tq_types::AuthorityKey([0; 32]);
//! let mut ctx = NodeCtx::new(id, authority, ChaCha20Rng::seed_from_u64(1));
//! let envelopes = ctx.drain_envelopes(); // no such method
//! ```
//!
//! nor can a proof be made up:
//!
//! ```compile_fail,E0451
//! # use trust_quorum::node::{NodeCtx, Persisted};
//! # use rand_chacha::ChaCha20Rng; use rand_core::SeedableRng;
//! # let id: tq_types::BaseboardId = "PART:1".parse().unwrap();
//! # let authority = tq_types::AuthorityKey([0; 32]);
//! let mut ctx = NodeCtx::new(id, authority, ChaCha20Rng::seed_from_u64(1));
//! let persisted = Persisted { ctx: &mut ctx }; // private field
//! ```
//!
//! and a proof from before a call does not cover that call:
//!
//! ```compile_fail,E0499
//! # use trust_quorum::node::{Node, NodeCtx, Write};
//! # use rand_chacha::ChaCha20Rng; use rand_core::SeedableRng;
//! # let id: tq_types::BaseboardId = "PART:1".parse().unwrap();
//! # let peer: tq_types::BaseboardId = "PART:2".parse().unwrap();
//! # let authority = tq_types::AuthorityKey([0; 32]);
//! let mut ctx = NodeCtx::new(id, authority, ChaCha20Rng::seed_from_u64(1));
//! let mut node = Node::new(&mut ctx);
//! let mut persisted = match ctx.take_write() {
//!     Write::Pending(write) => write.written(),
//!     Write::Nothing(persisted) => persisted,
//! };
//! node.on_connect(&mut ctx, peer); // ctx is still borrowed by the proof
//! let envelopes = persisted.envelopes();
//! ```

use tq_types::Envelope;
use tq_types::codec::EncodeError;

use super::ctx::NodeCtx;
use super::persistent::PersistentState;

impl NodeCtx {
    /// The durable write the calls since the last one made necessary:
    /// [`Write::Pending`] when the persistent state changed, otherwise the
    /// proof at once.
    pub fn take_write(&mut self) -> Write<'_> {
        if self.has_unwritten_change() {
            Write::Pending(PendingWrite { ctx: self })
        } else {
            Write::Nothing(Persisted { ctx: self })
        }
    }
}

/// What [`NodeCtx::take_write`] found: a change to write, or nothing.
#[must_use = "envelopes and answers are released only by the proof this leads to"]
#[derive(Debug)]
pub enum Write<'a> {
    /// The persistent state changed: write it durably, then call
    /// [`PendingWrite::written`].
    Pending(PendingWrite<'a>),
    /// Nothing changed since the last write: the proof, at once.
    Nothing(Persisted<'a>),
}

/// A change of the persistent state that must be written durably before
/// anything leaves the node.
///
/// Dropping it without calling [`written`](Self::written) keeps the change
/// pending: the next [`NodeCtx::take_write`] offers it again, and the queued
/// envelopes stay queued.
#[must_use = "write the state durably, then call written()"]
#[derive(Debug)]
pub struct PendingWrite<'a> {
    ctx: &'a mut NodeCtx,
}

impl<'a> PendingWrite<'a> {
    /// The state to write.
    pub fn state(&self) -> &PersistentState {
        self.ctx.persistent_state()
    }

    /// The state to write, encoded (see [`PersistentState::decode`]).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        self.ctx.persistent_state().encode()
    }

    /// Call once the state is durably written. Returns the proof that
    /// releases envelopes and answers.
    pub fn written(self) -> Persisted<'a> {
        self.ctx.mark_written();
        Persisted { ctx: self.ctx }
    }
}

/// Proof that everything the node changed is durable. Only
/// [`PendingWrite::written`] and [`Write::Nothing`] make one.
#[derive(Debug)]
pub struct Persisted<'a> {
    ctx: &'a mut NodeCtx,
}

impl Persisted<'_> {
    /// Takes the queued envelopes, to send now.
    #[must_use = "queued envelopes must be sent"]
    pub fn envelopes(&mut self) -> Vec<Envelope> {
        self.ctx.take_outbox()
    }
}

/// An answer for the control plane, held back until the state it reports
/// is durable.
#[must_use = "answer the control plane with release()"]
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Reply<T>(T);

impl<T> Reply<T> {
    pub(super) fn new(value: T) -> Self {
        Self(value)
    }

    /// The answer, once the state it reports is durable.
    pub fn release(self, _proof: &Persisted<'_>) -> T {
        self.0
    }
}
