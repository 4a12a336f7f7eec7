//! `control_plane_ops`: one control plane fed arbitrary operator operations
//! and driver results.

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::{Arbitrary, Unstructured};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tq_types::membership::Timestamp;
use tq_types::{
    BaseboardId, CommitStatus, Configuration, CoordinatorStatus, Epoch, ShareDigest, Threshold,
};
use trust_quorum::control::{
    ControlPlane, ControlPlaneConfig, CrashTolerance, MemberCommitError, ThresholdRule,
};
use trust_quorum::harness::Controller;

use crate::fuzzing::scenario::rack;
use crate::ledger_rules::oracle::{self, KFromN, LedgerImage, OraclePolicy, ZTable};
use crate::world::sled_id;

/// One operator operation or driver result on the control plane.
#[derive(Debug, Arbitrary)]
enum ControlInput {
    Initialize { members: u16 },
    Add { sleds: u16 },
    Remove { sleds: u16 },
    Abort,
    Tick,
    Advance { secs: u16 },
    Status { epoch: u8, from: u8, acked: u16, digest_seed: u8, coordinating: bool, sealed: bool },
    CommitResult { epoch: u8, member: u8, committed: bool, not_prepared: bool },
    Activated { sled: u8 },
    Unreachable { sled: u8 },
}

fn sleds_of(mask: u16) -> BTreeSet<BaseboardId> {
    (0..10).filter(|i| mask & (1 << i) != 0).map(sled_id).collect()
}

/// `control_plane_ops`: arbitrary operator operations and driver results
/// (stale, duplicated, fabricated) on a `ControlPlane` embedded through its
/// store step: no panic; after every step the ledger is stored, the
/// product's own guard (`Ledger::validate`) accepts it, the independent
/// ledger oracle (`ledger_rules::oracle`: K, Z and K + Z from the
/// membership, every record, activations, and what may change from one
/// ledger to the next) finds nothing, and a rejected operation leaves the
/// ledger untouched.
pub fn control_plane_ops(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut rng = ChaCha20Rng::seed_from_u64(u.arbitrary::<u64>().unwrap_or(0));
    let authority = trust_quorum::crypto::authority::Authority::generate(&mut rng);
    let mut cp = Controller::new(ControlPlaneConfig::default(), std::sync::Arc::new(authority));
    let mut now_us: i64 = 1_768_426_338_000_000;
    let policy = oracle_policy(&ControlPlaneConfig::default());
    let mut last = LedgerImage::of(cp.ledger()).expect("the oracle reads a ledger");
    let mut steps = 0;
    while let Ok(input) = u.arbitrary::<ControlInput>() {
        steps += 1;
        if steps > 128 {
            break;
        }
        let now = Timestamp::from_unix_micros(now_us).expect("valid time");
        let before = cp.ledger().clone();
        let rejected = match input {
            ControlInput::Initialize { members } => {
                cp.initialize(rack(), sleds_of(members), now, &mut rng).is_err()
            }
            ControlInput::Add { sleds } => cp.add_sleds(sleds_of(sleds), now, &mut rng).is_err(),
            ControlInput::Remove { sleds } => {
                cp.remove_sleds(sleds_of(sleds), now, &mut rng).is_err()
            }
            ControlInput::Abort => cp.abort_latest("fuzz", now).is_err(),
            ControlInput::Tick => {
                let _ = cp.tick(now, &mut rng);
                false
            }
            ControlInput::Advance { secs } => {
                now_us = now_us.saturating_add(i64::from(secs).saturating_mul(1_000_000));
                false
            }
            ControlInput::Status { epoch, from, acked, digest_seed, coordinating, sealed } => {
                let epoch = Epoch(u64::from(epoch));
                let from = sled_id(usize::from(from % 10));
                let status = coordinating
                    .then(|| fabricated_status(&cp, epoch, &from, acked, digest_seed, sealed));
                cp.on_coordinator_status(epoch, &from, status, now).is_err()
            }
            ControlInput::CommitResult { epoch, member, committed, not_prepared } => {
                let result = if not_prepared {
                    Err(MemberCommitError::Commit(tq_types::CommitError::NotPrepared(Epoch(
                        u64::from(epoch),
                    ))))
                } else if committed {
                    Ok(CommitStatus::Committed)
                } else {
                    Ok(CommitStatus::Pending)
                };
                cp.on_commit_result(
                    Epoch(u64::from(epoch)),
                    &sled_id(usize::from(member % 10)),
                    result,
                    now,
                )
                .is_err()
            }
            ControlInput::Activated { sled } => {
                cp.on_activated(&sled_id(usize::from(sled % 10)), now).is_err()
            }
            ControlInput::Unreachable { sled } => {
                cp.on_unreachable(&sled_id(usize::from(sled % 10)), now);
                false
            }
        };
        let ledger = cp.ledger();
        assert_eq!(cp.stored(), ledger, "every change is stored by the step that made it");
        if let Err(e) = ledger.validate() {
            panic!("ledger invalid: {e}");
        }
        if rejected {
            assert_eq!(&before, ledger, "a rejected operation changed the ledger");
        }
        let image = LedgerImage::of(ledger).expect("the oracle reads a ledger");
        let findings = oracle::check_ledger(&image, &policy);
        assert!(findings.is_empty(), "ledger oracle: {findings:?}");
        let moved = oracle::check_transition(&last, &image);
        assert!(moved.is_empty(), "ledger oracle: {moved:?}");
        last = image;
    }
}

/// The oracle's view of a control plane's settings: which threshold rule,
/// Z table and limits it was configured with (the oracle computes K and Z
/// itself).
pub(crate) fn oracle_policy(settings: &ControlPlaneConfig) -> OraclePolicy {
    let k_rule = match settings.policy.threshold_rule() {
        ThresholdRule::Majority => KFromN::Majority,
        ThresholdRule::MajorityPlus(d) => KFromN::MajorityPlus(d),
    };
    let z_table = match settings.policy.crash_tolerance_table() {
        CrashTolerance::AddSledsRelease => ZTable::AddSledsRelease,
        CrashTolerance::LatestReference => ZTable::LatestReference,
        CrashTolerance::Fixed(z) => ZTable::Fixed(*z),
    };
    OraclePolicy {
        k_rule,
        z_table,
        min_members: settings.policy.min_members(),
        max_members: settings.policy.max_members(),
        max_attempts: settings.max_attempts,
    }
}

/// A coordinator status for `epoch`, built from the ledger's view where it
/// exists (so that it is often accepted), with made-up digests.
fn fabricated_status(
    cp: &ControlPlane,
    epoch: Epoch,
    from: &BaseboardId,
    acked: u16,
    digest_seed: u8,
    sealed: bool,
) -> CoordinatorStatus {
    let view = cp.config(epoch);
    let members: BTreeMap<BaseboardId, ShareDigest> = match &view {
        Some(v) => v
            .members
            .iter()
            .map(|(m, d)| {
                let digest = d.share_digest.unwrap_or_else(|| {
                    ShareDigest(
                        *blake3::hash(&[digest_seed, m.serial_number().len() as u8]).as_bytes(),
                    )
                });
                (m.clone(), digest)
            })
            .collect(),
        None => BTreeMap::new(),
    };
    let acked_prepares = members
        .keys()
        .enumerate()
        .filter(|(i, _)| acked & (1 << (i % 16)) != 0)
        .map(|(_, m)| m.clone())
        .collect();
    let rack_id = view.as_ref().map_or(rack(), |v| v.rack_id);
    let coordinator = view.as_ref().map_or_else(|| from.clone(), |v| v.coordinator.clone());
    let threshold = view.as_ref().map_or(Threshold(2), |v| v.threshold);
    // The request the control plane signed for this epoch (or, with no
    // view, one it never made): fabricated statuses embed it, so that they
    // are often accepted.
    let msg = tq_types::ReconfigureMsg {
        rack_id,
        epoch,
        last_committed_epoch: view.as_ref().and_then(|v| v.last_committed_epoch),
        members: members.keys().cloned().collect(),
        threshold,
        coordinator: coordinator.clone(),
    };
    let reconfigure = cp.authority().sign_reconfigure(msg).expect("signs");
    let config = Configuration {
        rack_id,
        epoch,
        coordinator,
        threshold,
        reconfigure: Box::new(reconfigure),
        encrypted_rack_secrets: sealed.then(|| tq_types::EncryptedRackSecrets {
            salt: tq_types::Salt([digest_seed; 32]),
            data: vec![digest_seed; 56],
        }),
        members,
    };
    CoordinatorStatus { config, acked_prepares }
}
