//! Replays every file of `fuzz/corpus/decode_persistent_state/` through the
//! function its cargo-fuzz target calls, so CI catches regressions on
//! stable Rust (as `fuzz_corpus.rs` does for the other targets).
//!
//! `TQ_WRITE_PERSISTENT_CORPUS=1 cargo test -p tq-sim --test
//! persistent_corpus -- --ignored write_corpus_seeds` writes the seeds
//! (`tq_sim::fuzzing::persistent::persistent_state_corpus_seeds`: real
//! states of a short fault-free run, whole and as bodies, and mutations),
//! each named by the first 40 hex digits of its BLAKE3 hash. Do that after
//! a change of the persistent format, and delete the files it no longer
//! writes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::PathBuf;

use tq_sim::fuzzing::persistent::{decode_persistent_state, persistent_state_corpus_seeds};
use trust_quorum::PersistentState;

const TARGET: &str = "decode_persistent_state";

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(TARGET)
}

fn corpus() -> Vec<(PathBuf, Vec<u8>)> {
    let dir = dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "empty corpus for {TARGET}");
    files.into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
}

#[test]
fn decode_persistent_state_corpus() {
    let mut decoded = 0;
    for (path, bytes) in corpus() {
        let result = std::panic::catch_unwind(|| decode_persistent_state(&bytes));
        assert!(result.is_ok(), "{TARGET}: {} fails", path.display());
        let framed = PersistentState::frame_unchecked(&bytes);
        decoded += usize::from(PersistentState::decode(&bytes).is_ok());
        decoded += usize::from(PersistentState::decode(&framed).is_ok());
    }
    // The corpus holds real states, not only inputs the decoder refuses;
    // after a format change, regenerate it (see the module docs).
    assert!(decoded >= 4, "only {decoded} corpus inputs decode: regenerate the corpus");
}

#[test]
#[ignore = "writes the corpus seeds into fuzz/corpus"]
fn write_corpus_seeds() {
    if std::env::var_os("TQ_WRITE_PERSISTENT_CORPUS").is_none() {
        return;
    }
    for seed in persistent_state_corpus_seeds() {
        let name = blake3::hash(&seed).to_hex();
        std::fs::write(dir().join(&name.as_str()[..40]), &seed).unwrap();
    }
}
