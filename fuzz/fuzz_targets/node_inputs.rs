//! Fuzz target `node_inputs`: the logic and its oracles live in
//! `tq_sim::fuzzing::node_inputs`, which a stable test also runs over the corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tq_sim::fuzzing::node_inputs(data));
