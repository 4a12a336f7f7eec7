//! Fuzz target `decode_persistent_state`: the logic and its oracles live in
//! `tq_sim::fuzzing::persistent::decode_persistent_state`, which a stable
//! test (`tq-sim/tests/persistent_corpus.rs`) also runs over the corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tq_sim::fuzzing::persistent::decode_persistent_state(data)
});
