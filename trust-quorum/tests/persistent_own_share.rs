//! Finding "a flipped share on disk", at run time: a node checks its own
//! share against its digest before every use. A node started on a state
//! whose share is corrupt (flipped in memory, or another member's share,
//! which decodes) raises an alarm, never sends or uses the share, and never
//! returns or seals a wrong secret: the K shares come from its peers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    missing_docs
)]

mod persistent_support;
mod support;

use std::collections::BTreeMap;

use persistent_support::{Net, RealRack, real_rack};
use support::id;
use tq_types::{Alarm, BaseboardId, Epoch, PeerMsgKind, Share, StateCorruption};
use trust_quorum::{NodeCtx, PersistentState};

/// How sled 0's share of epoch 3 (its latest committed) is corrupted.
#[derive(Clone, Copy, Debug)]
enum Corruption {
    /// One y byte flipped in memory (a state `decode` would refuse, built
    /// with the test-only `from_parts_unchecked`).
    Flipped,
    /// Sled 1's share of epoch 3: a state that decodes, which only
    /// `validate(me)` refuses; `NodeCtx::with_persistent_state` trusts it.
    Swapped,
}

const BOTH: [Corruption; 2] = [Corruption::Flipped, Corruption::Swapped];

fn corrupt_disk(r: &RealRack, how: Corruption) -> PersistentState {
    let mut parts = r.cluster.state(&id(0)).to_parts();
    match how {
        Corruption::Flipped => {
            let mut bytes = parts.shares[&Epoch(3)].as_bytes().to_vec();
            bytes[7] ^= 0x10;
            parts.shares.insert(Epoch(3), Share::new(bytes));
            PersistentState::from_parts_unchecked(parts)
        }
        Corruption::Swapped => {
            let theirs = r.cluster.state(&id(1)).share(Epoch(3)).unwrap().clone();
            parts.shares.insert(Epoch(3), theirs);
            let state = PersistentState::try_from(parts).unwrap();
            PersistentState::decode(&state.encode().unwrap()).unwrap()
        }
    }
}

/// Every sled of the real rack on its disk, sled 0's corrupted.
fn disks(r: &RealRack, how: Corruption) -> BTreeMap<BaseboardId, PersistentState> {
    let mut disks: BTreeMap<BaseboardId, PersistentState> =
        (0..5).map(|i| (id(i), r.cluster.state(&id(i)).clone())).collect();
    disks.insert(id(0), corrupt_disk(r, how));
    disks
}

fn corrupt_alarm() -> Alarm {
    Alarm::CorruptState { epoch: Epoch(3), reason: StateCorruption::ShareDigestMismatch }
}

#[test]
fn a_corrupt_state_is_refused_by_the_checked_constructor() {
    let r = real_rack();
    for how in BOTH {
        let rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(1);
        let ctx = NodeCtx::try_with_persistent_state(id(0), corrupt_disk(&r, how), rng);
        assert!(ctx.is_err(), "{how:?}");
    }
}

#[test]
fn a_corrupt_own_share_is_never_sent_and_never_yields_a_wrong_secret() {
    let r = real_rack();
    for how in BOTH {
        let mut net = Net::boot(disks(&r, how), |_, _| {});
        // Sled 1 asks everyone for shares of epoch 3: sled 0 answers
        // nothing, and the secret comes from sleds 1, 2 and 4.
        assert_eq!(net.load(&id(1), 3).unwrap(), r.secrets[&3], "{how:?}");
        let from_0 = |e: &&tq_types::Envelope| e.from == id(0);
        let shares_sent = net
            .sent
            .iter()
            .filter(from_0)
            .filter(|e| matches!(e.msg.kind, PeerMsgKind::Share { epoch: Epoch(3), .. }));
        assert_eq!(shares_sent.count(), 0, "{how:?}: sled 0 sent its corrupt share");
        assert_eq!(net.alarms(&id(0)), vec![corrupt_alarm()], "{how:?}");
        // Sled 0 itself loads the right secrets, from its peers' shares.
        for epoch in 1..=3 {
            assert_eq!(net.load(&id(0), epoch).unwrap(), r.secrets[&epoch], "{how:?} {epoch}");
        }
        assert_eq!(net.alarms(&id(0)), vec![corrupt_alarm()], "{how:?}");
        for i in [1, 2, 4] {
            assert_eq!(net.alarms(&id(i)), vec![], "{how:?}: sled {i}");
        }
    }
}

/// The scenario: the node with the corrupt share coordinates the
/// next epoch. It does not use its old share, collects K from its peers,
/// and seals the right secrets into the chain.
#[test]
fn a_coordinator_never_seals_a_secret_rebuilt_from_its_corrupt_share() {
    let r = real_rack();
    for how in BOTH {
        let mut net = Net::boot(disks(&r, how), |_, _| {});
        net.reconfigure_and_commit(&id(0), 5, 3, &[0, 1, 2, 4]);
        assert_eq!(net.alarms(&id(0)), vec![corrupt_alarm()], "{how:?}");
        // Sled 4 opens epoch 5's chain: the earlier secrets are the real ones.
        net.load(&id(4), 5).unwrap();
        for epoch in 1..=3 {
            assert_eq!(net.load(&id(4), epoch).unwrap(), r.secrets[&epoch], "{how:?} {epoch}");
        }
        assert_eq!(net.alarms(&id(4)), vec![], "{how:?}");
    }
}

/// With `SkipShareDigestCheck` planted, the node uses its corrupt share
/// unchecked (no `CorruptState` alarm): the planted bug still switches off
/// every share digest check. The sealed chain of epoch 3 then fails to open
/// under the wrong secret, so even the bug gives an alarm, not a wrong
/// secret, for an epoch that seals earlier ones.
#[cfg(feature = "planted-bugs")]
#[test]
fn the_planted_bug_skips_the_own_share_check() {
    use trust_quorum::PlantedBug;
    let r = real_rack();
    let mut net = Net::boot(disks(&r, Corruption::Flipped), |who, ctx| {
        if *who == id(0) {
            ctx.plant_bug(PlantedBug::SkipShareDigestCheck);
        }
    });
    assert_eq!(net.call(&id(0), |n, ctx| n.load_rack_secret(ctx, Epoch(3))), Ok(None));
    net.deliver_all();
    let alarms = net.alarms(&id(0));
    assert!(!alarms.contains(&corrupt_alarm()), "{alarms:?}");
    assert_eq!(alarms, vec![Alarm::RackSecretDecryptionFailed { epoch: Epoch(3) }]);
}
