//! In-process embeddings of the node role, for tests, benchmarks, fuzzing
//! and the simulator (feature `harness`).
//!
//! [`Sled`] embeds one node over an in-memory durable store, through the
//! same step a real embedder runs after every call (see
//! [`Write`](crate::node::Write)): the call, the durable write if the call
//! made one necessary, then the release of its envelopes and its answer.
//! [`Rack`] joins sleds with one FIFO network. [`Controller`] embeds a
//! control plane over an in-memory ledger store, through the control
//! plane's store step (see [`LedgerWrite`](crate::control::LedgerWrite)).
//! The simulator keeps its own network with faults and its own replicated
//! store, and embeds each sled through [`Sled`] too.

mod control;
mod rack;
mod sled;

pub use self::control::Controller;
pub use self::rack::{MAX_DELIVERIES, NeverDrained, Rack};
pub use self::sled::{Sled, Stepped};
