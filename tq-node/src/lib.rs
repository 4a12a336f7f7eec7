//! The trust-quorum sled agent: the node role of `trust-quorum` on real
//! disks and real, authenticated sockets.
//!
//! - [`storage`]: the durable state in two copies, written with fsync and
//!   rename, checked with a BLAKE3 checksum, repaired from the good copy;
//! - [`tls`], [`frame`] and [`transport`]: mutual-TLS peer links carrying
//!   length-prefixed postcard frames, one connection per pair of sleds;
//! - [`agent`]: the task that owns the node and runs the embedder step
//!   after every input, plus the control API ([`api`]) and the local
//!   secret-use API ([`local`]);
//! - [`config`], [`keys`] and [`authority`]: the TOML configuration, the
//!   rack's certificates and the control plane's authority key.
#![forbid(unsafe_code)]

pub mod agent;
pub mod api;
pub mod authority;
pub mod config;
mod files;
pub mod frame;
pub mod keys;
pub mod local;
pub mod signal;
pub mod storage;
pub mod tls;
pub mod transport;
pub mod unlock;
