//! The fuzz targets' logic, on stable Rust.
//!
//! Each function takes the fuzzer's raw bytes and panics exactly when it
//! finds a defect (a panic in the code under test, or a broken oracle).
//! The cargo-fuzz targets in `fuzz/` call these functions, and a stable test
//! replays every committed corpus file through them, so CI catches
//! regressions without a nightly toolchain.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "a fuzz harness over fixed scenario data reports a defect by panicking"
)]

mod control_ops;
mod node_inputs;
pub mod persistent;
mod scenario;
mod sim_seed;

use tq_types::PeerMsg;

pub use self::control_ops::control_plane_ops;
pub use self::node_inputs::node_inputs;
pub use self::sim_seed::sim_seed;

/// `decode_peer_msg`: arbitrary bytes into the binary decoder never panic,
/// and anything that decodes re-encodes to bytes that decode to an equal
/// value.
pub fn decode_peer_msg(data: &[u8]) {
    if let Ok(msg) = PeerMsg::decode(data) {
        let bytes = msg.encode().expect("a decoded message encodes");
        let again = PeerMsg::decode(&bytes).expect("an encoded message decodes");
        assert_eq!(msg, again, "decode(encode(m)) != m");
    }
}
