//! Fuzz target `control_plane_ops`: the logic and its oracles live in
//! `tq_sim::fuzzing::control_plane_ops`, which a stable test also runs over the corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tq_sim::fuzzing::control_plane_ops(data));
