//! A node's durable state (docs/protocol.md section 2.1).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use tq_types::codec::{self, DecodeError, EncodeError};
use tq_types::{
    AuthorityKey, CommitCertificate, CommittedConfig, Configuration, Epoch, ExpungedMetadata,
    RackId, Share,
};

/// The largest encoded persistent state accepted by [`PersistentState::decode`].
pub const MAX_PERSISTENT_STATE_LEN: usize = 64 << 20;

/// Everything a node must keep across restarts: the control plane's
/// authority key, configurations and its own shares by epoch, committed
/// epochs with their commit certificates, and whether it was expunged.
///
/// Configurations, shares and commits only grow: they are never replaced or
/// removed. The expunged marker is cleared only by a later configuration
/// that lists the node (a re-add, docs/protocol.md section 4.8). The library
/// changes the state
/// only through [`NodeCtx`](super::NodeCtx), which raises a flag telling the
/// embedder to write it durably before sending anything.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PersistentState {
    authority: AuthorityKey,
    configs: BTreeMap<Epoch, Configuration>,
    shares: BTreeMap<Epoch, Share>,
    commits: BTreeSet<Epoch>,
    certificates: BTreeMap<Epoch, CommitCertificate>,
    expunged: Option<ExpungedMetadata>,
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

    /// Encodes the state for durable storage.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        codec::encode(self)
    }

    /// Decodes a state read back from durable storage.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode(bytes, MAX_PERSISTENT_STATE_LEN)
    }

    /// The stored configuration of `epoch`.
    pub fn config(&self, epoch: Epoch) -> Option<&Configuration> {
        self.configs.get(&epoch)
    }

    /// All stored configurations, by epoch.
    pub fn configs(&self) -> &BTreeMap<Epoch, Configuration> {
        &self.configs
    }

    /// This node's share of `epoch`.
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

    /// Records `epoch` as committed. Returns whether it was new.
    pub(crate) fn insert_commit(&mut self, epoch: Epoch) -> bool {
        debug_assert!(self.is_prepared(epoch), "commit of an unprepared epoch");
        self.commits.insert(epoch)
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
