//! The control plane's signed decisions, as nodes receive and store them
//! (docs/protocol.md section 8).
//!
//! The control plane holds an ed25519 signing key, the *authority*; every
//! node knows its public key ([`AuthorityKey`]). Two kinds of decision are
//! signed:
//!
//! - a [`SignedReconfigure`]: the request to build a configuration, which
//!   the coordinator embeds in the configuration it builds, so every node
//!   that stores the configuration can check that the control plane asked
//!   for exactly this membership, threshold, coordinator and epoch;
//! - a [`CommitCertificate`]: the decision that one configuration, named by
//!   the digest of its exact encoding, is committed.
//!
//! This crate only carries the bytes: signing, verification and digests are
//! the protocol crate's (`trust_quorum::crypto::authority`).

use serde::{Deserialize, Serialize};

use std::collections::BTreeSet;

use crate::ids::{BaseboardId, Epoch, RackId, Threshold};
use crate::serde_util::{hex_array32, hex_array64};

/// The authority's ed25519 public key (32 bytes, lowercase hex in JSON).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AuthorityKey(#[serde(with = "hex_array32")] pub [u8; 32]);

impl std::fmt::Debug for AuthorityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuthorityKey({})", hex::encode(self.0))
    }
}

impl std::fmt::Display for AuthorityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// An ed25519 signature by the authority (64 bytes).
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AuthoritySignature(#[serde(with = "hex_array64")] pub [u8; 64]);

impl std::fmt::Debug for AuthoritySignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let head = self.0.get(..8).unwrap_or_default();
        write!(f, "AuthoritySignature({}..)", hex::encode(head))
    }
}

/// The BLAKE3 digest of a configuration's binary encoding: what a commit
/// certificate names.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConfigDigest(#[serde(with = "hex_array32")] pub [u8; 32]);

impl std::fmt::Debug for ConfigDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConfigDigest({})", hex::encode(self.0))
    }
}

/// A reconfiguration request as the authority signed it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SignedReconfigure {
    /// The request.
    pub msg: ReconfigureMsg,
    /// The authority's signature over the request's encoding.
    pub signature: AuthoritySignature,
}

/// The authority's decision that the configuration whose encoding has
/// digest `config_digest` is the committed configuration of `epoch`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct CommitCertificate {
    /// The rack.
    pub rack_id: RackId,
    /// The committed epoch.
    pub epoch: Epoch,
    /// The digest of the exact configuration committed.
    pub config_digest: ConfigDigest,
    /// The authority's signature over the three fields above.
    pub signature: AuthoritySignature,
}

/// Control plane to the chosen coordinator: build and prepare a new
/// configuration.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ReconfigureMsg {
    /// The rack being reconfigured.
    pub rack_id: RackId,
    /// The new configuration's epoch.
    pub epoch: Epoch,
    /// The latest committed epoch the new configuration builds on; `None` for
    /// a rack's first configuration.
    pub last_committed_epoch: Option<Epoch>,
    /// The new membership.
    pub members: BTreeSet<BaseboardId>,
    /// Shares needed to rebuild the new rack secret.
    pub threshold: Threshold,
    /// The member asked to coordinate.
    pub coordinator: BaseboardId,
}
