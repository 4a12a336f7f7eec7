//! The trust-quorum protocol, sans I/O.
//!
//! A rack's sleds jointly hold a rack secret as Shamir shares; the control
//! plane changes the membership through numbered, two-phase
//! reconfigurations ("epochs"). This crate implements both roles as pure
//! state machines: it performs no I/O, reads no clock and draws randomness
//! only from an injected [`rand_core::CryptoRng`], so the same inputs and
//! seed always give the same bytes.
#![forbid(unsafe_code)]

pub mod control;
pub mod crypto;
#[cfg(feature = "harness")]
pub mod harness;
pub mod node;
mod planted;

pub use crypto::RackSecret;
pub use node::{Node, NodeCtx, PersistentState};
#[cfg(feature = "planted-bugs")]
pub use planted::PlantedBug;

/// The README's examples, compiled and run as doctests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
