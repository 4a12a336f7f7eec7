//! A local trust-quorum rack of real processes on loopback: sled agents
//! (`tq_node::agent`) and control-plane replicas (`tq_ctl::service`), each
//! a detached process of the `tq-rack` binary itself, driven through the
//! operator API like an operator would, plus a seeded chaos run that
//! kills and restarts those processes and then checks the rack from
//! outside.
//!
//! - [`layout`]: the rack's folder (`rack.toml`, configurations, data,
//!   logs, pid files);
//! - [`setup`]: making a new rack's keys, ports and configurations;
//! - [`procs`]: starting, signalling and stopping the processes;
//! - [`client`]: the operator API and the sleds' APIs over HTTP;
//! - [`wait`]: bounded waits that say what they waited for;
//! - [`commands`]: the operator commands (`up`, `add`, `remove`, ...);
//! - [`chaos`]: the chaos run, and [`check`]: its checks from outside;
//! - [`serve`]: the hidden modes that run one agent or one replica;
//! - [`error`]: why a command failed, and its exit code.
#![forbid(unsafe_code)]

pub mod chaos;
pub mod check;
pub mod client;
pub mod commands;
pub mod error;
pub mod layout;
pub mod procs;
pub mod serve;
pub mod setup;
pub mod wait;

pub use error::RackError;
