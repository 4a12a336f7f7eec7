//! The trust-quorum control-plane service: one replica of the control
//! plane, its ledger in SQLite (the default) or PostgreSQL, the driver that
//! carries out its actions against the sled agents' control APIs, and the
//! operator API.
//!
//! - [`config`]: one TOML file per replica;
//! - [`store`]: the ledger in a database, compare-and-set on its generation,
//!   versioned migrations;
//! - [`service`]: starting a replica (`start`) and stopping it;
//! - [`api`]: the operator API;
//! - [`errors`]: why an operator request was refused;
//! - [`openapi`]: the operator API's OpenAPI document (checked in as
//!   `openapi.json`).
#![forbid(unsafe_code)]

mod actions;
pub mod api;
pub mod config;
pub mod errors;
pub mod openapi;
mod replica;
pub mod service;
pub mod store;
