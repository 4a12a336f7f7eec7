//! `decode_persistent_state`: arbitrary bytes into
//! [`PersistentState::decode`], taken both as a whole encoding and as a body
//! framed with a valid version byte and checksum (so that the fuzzer reaches
//! the rules behind the checksum). Decoding never panics, and whatever
//! decodes validates, re-encodes to exactly the input and decodes again to
//! an equal state.

use trust_quorum::PersistentState;
use trust_quorum::node::PERSISTENT_CHECKSUM_LEN;

use super::scenario::scenario;

/// The fuzz target's body: see the [module docs](self).
pub fn decode_persistent_state(data: &[u8]) {
    check(data);
    check(&PersistentState::frame_unchecked(data));
}

/// The oracles on one input: if it decodes, the state is valid and the
/// encoding canonical.
fn check(bytes: &[u8]) {
    let Ok(state) = PersistentState::decode(bytes) else {
        return;
    };
    let again = state.encode().expect("a decoded state encodes");
    assert_eq!(again, bytes, "encode(decode(b)) != b");
    assert_eq!(PersistentState::decode(&again).as_ref(), Ok(&state), "decode(encode(s)) != s");
    let revalidated = PersistentState::try_from(state.to_parts());
    assert_eq!(revalidated.as_ref(), Ok(&state), "a decoded state does not validate");
    for epoch in state.commits() {
        assert!(state.is_prepared(*epoch), "decoded commit of unprepared {epoch:?}");
    }
}

/// Corpus seeds: every distinct durable state of the node-fuzzing scenario
/// (a small rack run fault-free through two epochs), each as a whole
/// encoding and as its body alone, plus a few mutations of each body (a
/// flipped byte in a third of it, in the middle, in the last byte, and the
/// body cut short by one byte).
pub fn persistent_state_corpus_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for (_, state) in &scenario().checkpoints {
        let whole = state.encode().expect("a state encodes");
        let body = whole[1 + PERSISTENT_CHECKSUM_LEN..].to_vec();
        let mut mutations = Vec::new();
        for at in [body.len() / 3, body.len() / 2, body.len().saturating_sub(1)] {
            let mut m = body.clone();
            if let Some(b) = m.get_mut(at) {
                *b ^= 0x5a;
            }
            mutations.push(m);
        }
        mutations.push(body[..body.len().saturating_sub(1)].to_vec());
        for seed in [whole, body].into_iter().chain(mutations) {
            if !seeds.contains(&seed) {
                seeds.push(seed);
            }
        }
    }
    seeds
}
