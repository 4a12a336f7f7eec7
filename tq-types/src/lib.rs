//! Plain data for the trust-quorum protocol.
//!
//! This crate holds every type that crosses a process boundary: identities,
//! epochs, configurations, peer messages, control-plane requests, status
//! views and errors. It has no cryptography and no I/O; every type derives
//! serde, and JSON spellings follow the fixtures captured from the reference
//! system (member maps keyed `PART:SERIAL`, lowercase hex for bytes,
//! snake_case enums).
//!
//! Peer messages and persistent state also have a compact binary encoding,
//! see [`codec`].
#![forbid(unsafe_code)]

pub mod authority;
pub mod codec;
pub mod config;
pub mod errors;
pub mod ids;
pub mod membership;
pub mod messages;
pub mod status;

mod serde_util;

pub use authority::{
    AuthorityKey, AuthoritySignature, CommitCertificate, ConfigDigest, ReconfigureMsg,
    SignedReconfigure,
};
pub use config::{CommittedConfig, Configuration, EncryptedRackSecrets, Salt, Share, ShareDigest};
pub use errors::{
    AuthorityError, CommitError, InvalidConfiguration, LoadRackSecretError, NodeRefusal,
    PrepareAndCommitError, RackIdMismatch, ReconfigurationError, SignedField,
};
pub use ids::{BaseboardId, BaseboardIdError, Epoch, RackId, Threshold};
pub use membership::{
    AddSledsRequest, ConfigState, MemberState, RackMembershipState, RackMembershipStatus,
    Timestamp, TimestampError, TrustQuorumConfig, TrustQuorumMemberData,
};
pub use messages::{CommitRequest, Envelope, PeerMsg, PeerMsgKind, PrepareAndCommitRequest};
pub use status::{
    Alarm, CommitStatus, CoordinatorStatus, ExpungedMetadata, NodeStatus, ShareComputationFailure,
    StateCorruption,
};
