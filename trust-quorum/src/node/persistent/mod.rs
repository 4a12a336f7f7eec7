//! A node's durable state (docs/protocol.md section 2.1), its versioned
//! encoding, and the checks that make a decoded state trustworthy.
//!
//! - `mod.rs`: [`PersistentState`], its views and crate-private mutators;
//! - `encoding.rs`: the encoding (a format-version byte, a checksum, then
//!   postcard), decoding with validation, and conversions to and from plain
//!   parts;
//! - `limits.rs`: the format version and the documented size bounds;
//! - `validate.rs`: the rules every state obeys;
//! - `error.rs`: the typed errors of decoding and validation;
//! - `retention.rs`: which epochs a state keeps, and pruning the rest;
//! - `own_share.rs`: the node-side uses, which need the node's id: loading
//!   a state for a node ([`NodeCtx::try_with_persistent_state`]) and checking
//!   the node's own share against its digest before every use.
//!
//! [`NodeCtx::try_with_persistent_state`]: super::NodeCtx::try_with_persistent_state

mod encoding;
mod error;
mod limits;
mod own_share;
mod retention;
mod validate;

use std::collections::{BTreeMap, BTreeSet};

use self::retention::Retention;
use serde::{Deserialize, Serialize};
use tq_types::{
    AuthorityKey, CommitCertificate, CommittedConfig, Configuration, Epoch, ExpungedMetadata,
    RackId, Share,
};

pub use self::error::{InvalidPersistentState, PersistentStateError};
pub use self::limits::{
    MAX_COMMITS, MAX_CONFIGS, MAX_ID_FIELD_LEN, MAX_PERSISTENT_STATE_LEN, MAX_SEALED_DATA_LEN,
    MAX_SHARES, PERSISTENT_CHECKSUM_CONTEXT, PERSISTENT_CHECKSUM_LEN, PERSISTENT_FORMAT_VERSION,
};

/// Everything a node must keep across restarts: the control plane's
/// authority key, configurations and its own shares by epoch, committed
/// epochs with their commit certificates, and whether it was expunged.
///
/// A stored configuration or share is never replaced, and the newest
/// committed epoch only grows. The state stays bounded: it keeps at most
/// three epochs (the newest committed one, the newest configuration, and the
/// epoch that configuration builds on while it is not yet committed here;
/// docs/protocol.md section 2.4) and drops the rest in the same write. The
/// newest committed configuration seals every earlier rack secret, so
/// nothing dropped is needed again. The expunged marker is cleared only by a
/// later configuration that lists the node (a re-add, docs/protocol.md
/// section 4.8). The library changes the state only through
/// [`NodeCtx`](super::NodeCtx), which raises a flag telling the embedder to
/// write it durably before sending anything.
///
/// A state from outside the library ([`decode`](Self::decode),
/// [`TryFrom<PersistentStateParts>`], serde) always passes the checks of
/// [`InvalidPersistentState`]; [`validate`](Self::validate) adds the ones that
/// need the node's id.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(try_from = "PersistentStateParts")]
pub struct PersistentState {
    authority: AuthorityKey,
    configs: BTreeMap<Epoch, Configuration>,
    shares: BTreeMap<Epoch, Share>,
    commits: BTreeSet<Epoch>,
    certificates: BTreeMap<Epoch, CommitCertificate>,
    expunged: Option<ExpungedMetadata>,
}

/// The fields of a [`PersistentState`] as plain data, in encoding order: to
/// inspect a state ([`PersistentState::to_parts`]) or to build one, which
/// [`PersistentState::try_from`] validates.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PersistentStateParts {
    /// The control plane's authority key.
    pub authority: AuthorityKey,
    /// Configurations by epoch.
    pub configs: BTreeMap<Epoch, Configuration>,
    /// The node's own shares by epoch.
    pub shares: BTreeMap<Epoch, Share>,
    /// Committed epochs.
    pub commits: BTreeSet<Epoch>,
    /// The certificates of committed (or learned-committed) epochs.
    pub certificates: BTreeMap<Epoch, CommitCertificate>,
    /// The expunged marker.
    pub expunged: Option<ExpungedMetadata>,
}

impl PersistentState {
    /// The state of a node that has never been part of a rack, and trusts
    /// the control plane whose authority key is `authority`.
    pub fn new(authority: AuthorityKey) -> Self {
        PersistentState {
            authority,
            configs: BTreeMap::new(),
            shares: BTreeMap::new(),
            commits: BTreeSet::new(),
            certificates: BTreeMap::new(),
            expunged: None,
        }
    }

    /// The public key of the control plane's authority, which signs every
    /// configuration, commit and expungement this node accepts.
    pub fn authority(&self) -> &AuthorityKey {
        &self.authority
    }

    /// The certificate of a committed (or learned-committed) epoch.
    pub fn certificate(&self, epoch: Epoch) -> Option<&CommitCertificate> {
        self.certificates.get(&epoch)
    }

    /// The newest committed configuration with its certificate: what the
    /// node forwards to peers that are behind or were removed.
    pub fn latest_committed(&self) -> Option<CommittedConfig> {
        let epoch = self.latest_committed_epoch()?;
        let config = self.configs.get(&epoch)?.clone();
        let certificate = *self.certificates.get(&epoch)?;
        Some(CommittedConfig { config, certificate })
    }

    /// The stored configuration of `epoch`.
    pub fn config(&self, epoch: Epoch) -> Option<&Configuration> {
        self.configs.get(&epoch)
    }

    /// All stored configurations, by epoch.
    pub fn configs(&self) -> &BTreeMap<Epoch, Configuration> {
        &self.configs
    }

    /// This node's share of `epoch`, unchecked: the node itself checks it
    /// against its digest before every use.
    pub fn share(&self, epoch: Epoch) -> Option<&Share> {
        self.shares.get(&epoch)
    }

    /// Epochs whose share this node holds.
    pub fn share_epochs(&self) -> impl Iterator<Item = Epoch> + '_ {
        self.shares.keys().copied()
    }

    /// Committed epochs.
    pub fn commits(&self) -> &BTreeSet<Epoch> {
        &self.commits
    }

    /// Set when the node learned it was removed from the rack at some epoch;
    /// cleared when a configuration of a later epoch lists it again.
    pub fn expunged(&self) -> Option<&ExpungedMetadata> {
        self.expunged.as_ref()
    }

    /// The newest stored configuration.
    pub fn latest_config(&self) -> Option<&Configuration> {
        self.configs.last_key_value().map(|(_, c)| c)
    }

    /// The newest committed epoch.
    pub fn latest_committed_epoch(&self) -> Option<Epoch> {
        self.commits.last().copied()
    }

    /// The newest committed configuration.
    pub fn latest_committed_config(&self) -> Option<&Configuration> {
        self.latest_committed_epoch().and_then(|e| self.configs.get(&e))
    }

    /// The rack of the newest stored configuration; `None` accepts any rack.
    pub fn rack_id(&self) -> Option<RackId> {
        self.latest_config().map(|c| c.rack_id)
    }

    /// Whether both the configuration and this node's share of `epoch` are
    /// stored.
    pub fn is_prepared(&self, epoch: Epoch) -> bool {
        self.configs.contains_key(&epoch) && self.shares.contains_key(&epoch)
    }

    /// Whether nothing has been committed on this node.
    pub fn is_uninitialized(&self) -> bool {
        self.commits.is_empty()
    }

    /// Whether an expungement bars this node from `epoch`: it was expunged
    /// at that epoch or a later one. A configuration of a later epoch that
    /// lists the node re-admits it (docs/protocol.md section 4.8).
    pub fn expunged_for(&self, epoch: Epoch) -> Option<&ExpungedMetadata> {
        self.expunged.as_ref().filter(|ex| epoch <= ex.epoch)
    }

    /// Stores `config`, which lists this node (callers check), if no
    /// configuration is stored for its epoch. Returns whether it was
    /// inserted.
    ///
    /// A configuration newer than the node's expungement re-admits it: the
    /// operator added the sled back, so the expunged marker is cleared in
    /// the same write (docs/protocol.md section 4.8). An expungement is only
    /// ever recorded at or above every stored epoch, so such a configuration
    /// is always a new one.
    pub(crate) fn insert_member_config(&mut self, config: Configuration) -> bool {
        if self.expunged.as_ref().is_some_and(|ex| config.epoch > ex.epoch) {
            self.expunged = None;
        }
        match self.configs.entry(config.epoch) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(config);
                true
            }
            std::collections::btree_map::Entry::Occupied(_) => false,
        }
    }

    /// Stores this node's share of `epoch` if none is stored. Returns whether
    /// it was inserted.
    pub(crate) fn insert_share(&mut self, epoch: Epoch, share: Share) -> bool {
        match self.shares.entry(epoch) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(share);
                true
            }
            std::collections::btree_map::Entry::Occupied(_) => false,
        }
    }

    /// Stores the certificate that its epoch is committed, if none is
    /// stored (callers verify it). Returns whether it was inserted.
    pub(crate) fn insert_certificate(&mut self, certificate: CommitCertificate) -> bool {
        match self.certificates.entry(certificate.epoch) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(certificate);
                true
            }
            std::collections::btree_map::Entry::Occupied(_) => false,
        }
    }

    /// Records `epoch` as committed. Returns whether it was new. An epoch
    /// that is not prepared is never recorded (callers check first; a state
    /// with such a commit would not decode).
    pub(crate) fn insert_commit(&mut self, epoch: Epoch) -> bool {
        debug_assert!(self.is_prepared(epoch), "commit of an unprepared epoch");
        if !self.is_prepared(epoch) {
            tracing::error!(%epoch, "commit of an unprepared epoch refused");
            return false;
        }
        self.commits.insert(epoch)
    }

    /// Whether a configuration of `epoch` would be kept if it were stored
    /// now (docs/protocol.md section 2.4): a node does not acknowledge or
    /// learn an epoch it would drop at once.
    pub(crate) fn would_keep(&self, epoch: Epoch) -> bool {
        Retention::of(&self.commits, &self.configs).would_keep(epoch)
    }

    /// Drops every configuration, share, commit and certificate the state no
    /// longer keeps. Returns whether anything was dropped.
    pub(crate) fn prune(&mut self) -> bool {
        let retention = Retention::of(&self.commits, &self.configs);
        let keep = |e: &Epoch| retention.keeps(*e);
        let before = (self.configs.len(), self.shares.len(), self.commits.len());
        let certificates = self.certificates.len();
        self.configs.retain(|e, _| keep(e));
        self.shares.retain(|e, _| keep(e));
        self.commits.retain(keep);
        self.certificates.retain(|e, _| keep(e));
        before != (self.configs.len(), self.shares.len(), self.commits.len())
            || certificates != self.certificates.len()
    }

    /// Records that this node was expunged, unless it already was. Returns
    /// whether it changed.
    pub(crate) fn set_expunged(&mut self, meta: ExpungedMetadata) -> bool {
        if self.expunged.is_some() {
            return false;
        }
        self.expunged = Some(meta);
        true
    }
}
