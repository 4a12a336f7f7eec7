//! Replays every committed fuzz corpus file through the function its
//! cargo-fuzz target calls, so CI catches regressions on stable Rust.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus for {target}");
    files.into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
}

fn replay(target: &str, f: fn(&[u8])) {
    for (path, bytes) in corpus(target) {
        let result = std::panic::catch_unwind(|| f(&bytes));
        assert!(result.is_ok(), "{target}: {} fails", path.display());
    }
}

#[test]
fn decode_peer_msg_corpus() {
    replay("decode_peer_msg", tq_sim::fuzzing::decode_peer_msg);
}

#[test]
fn node_inputs_corpus() {
    replay("node_inputs", tq_sim::fuzzing::node_inputs);
}

#[test]
fn control_plane_ops_corpus() {
    replay("control_plane_ops", tq_sim::fuzzing::control_plane_ops);
}

#[test]
fn sim_seed_corpus() {
    replay("sim_seed", tq_sim::fuzzing::sim_seed);
}
