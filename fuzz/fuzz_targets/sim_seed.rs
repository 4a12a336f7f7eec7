//! Fuzz target `sim_seed`: the logic and its oracles live in
//! `tq_sim::fuzzing::sim_seed`, which a stable test also runs over the corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tq_sim::fuzzing::sim_seed(data));
