//! Fuzz target `decode_peer_msg`: the logic and its oracles live in
//! `tq_sim::fuzzing::decode_peer_msg`, which a stable test also runs over the corpus.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tq_sim::fuzzing::decode_peer_msg(data));
