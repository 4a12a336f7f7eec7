//! Each invariant shown to fire: for every name in [`INVARIANTS`], a crafted
//! input that breaks exactly that rule makes the checker report exactly
//! that name, and a matching benign input reports nothing. The table must
//! name every invariant, so none can be added without a case here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tq_types::{
    Alarm, CoordinatorStatus, Epoch, ExpungedMetadata, LoadRackSecretError, PeerMsgKind,
    ShareDigest,
};
use trust_quorum::{PersistentState, RackSecret};

use super::Checker;
use super::rules::{INVARIANTS, Rule};
use super::support::{edit, fx, idle_status, load, names, persist, send};
use crate::control::Decisions;
use crate::observation::Observation;
use crate::world::{GroundTruth, sled_id};

/// One invariant's crafted inputs.
struct Case {
    rule: Rule,
    /// Breaks exactly `rule`.
    broken: fn(&mut Checker),
    /// The same shape of input, unbroken.
    benign: fn(&mut Checker),
}

fn blank() -> PersistentState {
    PersistentState::new(*fx().disk(0).authority())
}

/// Sled 0's state without its epoch-2 commit (and, with `share`, its
/// epoch-2 share).
fn before_commit(share: bool) -> PersistentState {
    edit(fx().disk(0), |d| {
        d.commits.remove(&Epoch(2));
        if share {
            d.shares.remove(&Epoch(2));
        }
    })
}

/// A truth in which the coordinator of epoch 2 handed out the fixture's
/// shares, the last one replaced by `last` (whose digest the configuration
/// then records).
fn split_truth(last: Option<Vec<u8>>) -> GroundTruth {
    let mut config = fx().config(2).clone();
    let members: Vec<_> = config.members.keys().cloned().collect();
    let mut shares: Vec<_> =
        members.iter().map(|m| fx().disks[m].share(Epoch(2)).unwrap().clone()).collect();
    if let Some(bytes) = last {
        let share = tq_types::Share::new(bytes);
        let digest = ShareDigest(*blake3::hash(share.as_bytes()).as_bytes());
        config.members.insert(members.last().unwrap().clone(), digest);
        *shares.last_mut().unwrap() = share;
    }
    let mut truth = GroundTruth::default();
    for (m, s) in members.iter().zip(&shares) {
        truth.handed_out(&config, m, s);
    }
    truth
}

/// The fixture's decisions, plus a committed epoch 3 that removed sled 0.
fn removed_at_3() -> Decisions {
    let mut d = fx().decisions.clone();
    let mut signed = fx().config(2).reconfigure.as_ref().clone();
    signed.msg.epoch = Epoch(3);
    signed.msg.members.remove(&sled_id(0));
    d.insert_request(signed);
    let mut cert = *fx().disk(0).certificate(Epoch(2)).unwrap();
    cert.epoch = Epoch(3);
    d.insert_certificate(cert);
    d
}

/// Sled 0 newly marked expunged at `epoch`, judged against `d`.
fn expunged_at(c: &mut Checker, epoch: u64, d: &Decisions) {
    let certificate = *fx().disk(0).certificate(Epoch(2)).unwrap();
    let ex = ExpungedMetadata { epoch: Epoch(epoch), from: sled_id(1), certificate };
    let disk = edit(fx().disk(0), |p| p.expunged = Some(ex));
    c.on_signed_persist(&sled_id(0), None, &disk, d);
}

/// Sled 0's damaged disk read back as `decoded`.
fn read_back(c: &mut Checker, decoded: Result<PersistentState, String>) {
    c.observe(Observation::DiskDecoded {
        who: sled_id(0),
        written: Arc::new(fx().disk(0).clone()),
        decoded: decoded.map(Arc::new),
    });
}

fn coordinating(acked: &[usize]) -> CoordinatorStatus {
    CoordinatorStatus {
        config: fx().config(2).clone(),
        acked_prepares: acked.iter().map(|i| sled_id(*i)).collect(),
    }
}

fn acked_check(c: &mut Checker, disks: &BTreeMap<tq_types::BaseboardId, PersistentState>) {
    let coordinator = fx().config(2).coordinator.clone();
    let lost = crate::world::LostFacts::default();
    c.acked_members_have_prepared(&coordinator, &coordinating(&[0, 3]), |m| disks.get(m), &lost);
}

const CASES: &[Case] = &[
    Case {
        rule: Rule::Monotonicity,
        broken: |c| persist(c, 0, fx().disk(0), before_commit(false)),
        benign: |c| persist(c, 0, &before_commit(false), fx().disk(0).clone()),
    },
    Case {
        rule: Rule::CommitImpliesPrepared,
        broken: |c| {
            persist(
                c,
                0,
                &blank(),
                edit(fx().disk(0), |d| {
                    d.shares.remove(&Epoch(2));
                }),
            )
        },
        benign: |c| persist(c, 0, &blank(), fx().disk(0).clone()),
    },
    Case {
        rule: Rule::Membership,
        broken: |c| {
            // Sled 4 never joined: epoch 2 does not list it.
            let new = edit(&blank(), |d| {
                d.configs.insert(Epoch(2), fx().config(2).clone());
            });
            persist(c, 4, &blank(), new);
        },
        benign: |c| persist(c, 3, &blank(), fx().disk(3).clone()),
    },
    Case {
        rule: Rule::ShareIntegrity,
        broken: |c| {
            persist(
                c,
                0,
                &blank(),
                edit(fx().disk(0), |d| {
                    d.shares.insert(Epoch(2), fx().share(1, 2));
                }),
            )
        },
        benign: |c| persist(c, 0, &blank(), fx().disk(0).clone()),
    },
    Case {
        rule: Rule::GlobalUniqueness,
        broken: |c| {
            persist(c, 0, &blank(), fx().disk(0).clone());
            let other = edit(fx().disk(1), |d| {
                d.configs.get_mut(&Epoch(2)).unwrap().threshold.0 = 2;
            });
            persist(c, 1, &blank(), other);
        },
        benign: |c| {
            persist(c, 0, &blank(), fx().disk(0).clone());
            persist(c, 1, &blank(), fx().disk(1).clone());
        },
    },
    Case {
        rule: Rule::ExpungedSilence,
        broken: |c| {
            let certificate = *fx().disk(0).certificate(Epoch(2)).unwrap();
            let ex = ExpungedMetadata { epoch: Epoch(2), from: sled_id(1), certificate };
            send(
                c,
                0,
                1,
                PeerMsgKind::PrepareAck(Epoch(2)),
                edit(fx().disk(0), |d| d.expunged = Some(ex)),
            );
        },
        benign: |c| send(c, 0, 1, PeerMsgKind::PrepareAck(Epoch(2)), fx().disk(0).clone()),
    },
    Case {
        rule: Rule::ShareOnlyToMembers,
        broken: |c| {
            send(
                c,
                0,
                3,
                PeerMsgKind::Share { epoch: Epoch(1), share: fx().share(0, 1) },
                fx().epoch1_disks[&sled_id(0)].clone(),
            )
        },
        benign: |c| {
            send(
                c,
                0,
                1,
                PeerMsgKind::Share { epoch: Epoch(1), share: fx().share(0, 1) },
                fx().epoch1_disks[&sled_id(0)].clone(),
            )
        },
    },
    Case {
        rule: Rule::PrepareOnlyToMembers,
        broken: |c| {
            let kind =
                PeerMsgKind::Prepare { config: fx().config(2).clone(), share: fx().share(3, 2) };
            send(c, 0, 4, kind, fx().disk(0).clone());
        },
        benign: |c| {
            let kind =
                PeerMsgKind::Prepare { config: fx().config(2).clone(), share: fx().share(3, 2) };
            send(c, 0, 3, kind, fx().disk(0).clone());
        },
    },
    Case {
        rule: Rule::StalePrepares,
        broken: |c| {
            // Still holding epoch 1 (as a bug that kept it would), so only
            // the staleness is wrong.
            let disk = edit(fx().disk(0), |d| {
                d.configs.insert(Epoch(1), fx().config(1).clone());
                d.shares.insert(Epoch(1), fx().share(0, 1));
            });
            send(c, 0, 1, PeerMsgKind::PrepareAck(Epoch(1)), disk)
        },
        benign: |c| send(c, 0, 1, PeerMsgKind::PrepareAck(Epoch(2)), fx().disk(0).clone()),
    },
    Case {
        rule: Rule::PersistBeforeSend,
        broken: |c| send(c, 0, 1, PeerMsgKind::PrepareAck(Epoch(2)), before_commit(true)),
        benign: |c| send(c, 0, 1, PeerMsgKind::PrepareAck(Epoch(2)), before_commit(false)),
    },
    Case {
        rule: Rule::ChainCompleteness,
        broken: |c| {
            let disk = edit(fx().disk(0), |d| {
                d.configs.get_mut(&Epoch(2)).unwrap().encrypted_rack_secrets = None
            });
            load(c, 0, 2, Ok(Some(fx().secret(2))), &disk);
        },
        benign: |c| load(c, 0, 2, Ok(Some(fx().secret(2))), fx().disk(0)),
    },
    Case {
        rule: Rule::LoadPostconditions,
        broken: |c| load(c, 0, 1, Err(LoadRackSecretError::NotCommitted(Epoch(1))), fx().disk(0)),
        benign: |c| load(c, 0, 3, Err(LoadRackSecretError::NotCommitted(Epoch(3))), fx().disk(0)),
    },
    Case {
        rule: Rule::SecretAgreement,
        broken: |c| {
            let other = RackSecret::generate(&mut ChaCha20Rng::seed_from_u64(1));
            load(c, 0, 1, Ok(Some(other)), fx().disk(0));
        },
        benign: |c| load(c, 0, 1, Ok(Some(fx().secret(1))), fx().disk(0)),
    },
    Case {
        rule: Rule::SplitConsistency,
        broken: |c| {
            // A share with the right x-coordinate and a matching digest,
            // off the polynomial of the others.
            let mut bytes = fx().share(3, 2).as_bytes().to_vec();
            bytes[5] ^= 1;
            c.split_consistency(&split_truth(Some(bytes)));
        },
        benign: |c| c.split_consistency(&split_truth(None)),
    },
    Case {
        rule: Rule::NoAlarms,
        broken: |c| {
            let mut status = idle_status(0);
            status.alarms.push(Alarm::RackSecretReconstructionFailed { epoch: Epoch(2) });
            c.no_alarms(&sled_id(0), &status);
        },
        benign: |c| c.no_alarms(&sled_id(0), &idle_status(0)),
    },
    Case {
        rule: Rule::CoordinateXorCompute,
        broken: |c| {
            let mut status = idle_status(0);
            status.coordinating = Some(Epoch(3));
            status.computing_share = Some(Epoch(2));
            c.no_coordinating_while_computing(&sled_id(0), &status);
        },
        benign: |c| {
            let mut status = idle_status(0);
            status.coordinating = Some(Epoch(3));
            c.no_coordinating_while_computing(&sled_id(0), &status);
        },
    },
    Case {
        rule: Rule::AckedMembersPrepared,
        broken: |c| {
            let mut disks = fx().disks.clone();
            disks.insert(sled_id(3), blank());
            acked_check(c, &disks);
        },
        benign: |c| acked_check(c, &fx().disks),
    },
    Case {
        rule: Rule::StateBound,
        broken: |c| {
            let new = edit(fx().disk(0), |d| {
                d.configs.insert(Epoch(1), fx().config(1).clone());
                d.shares.insert(Epoch(1), fx().share(0, 1));
            });
            persist(c, 0, &blank(), new);
        },
        benign: |c| persist(c, 0, &blank(), fx().disk(0).clone()),
    },
    Case {
        rule: Rule::SignedConfigsOnly,
        broken: |c| {
            // The request embedded in epoch 2 signed by someone else.
            let forged = edit(fx().disk(0), |d| {
                d.configs.get_mut(&Epoch(2)).unwrap().reconfigure.signature.0[0] ^= 1;
            });
            c.on_signed_persist(&sled_id(0), None, &forged, &fx().decisions);
        },
        benign: |c| c.on_signed_persist(&sled_id(0), None, fx().disk(0), &fx().decisions),
    },
    Case {
        rule: Rule::ExpungedOnlyIfRemoved,
        broken: |c| expunged_at(c, 2, &removed_at_3()),
        benign: |c| expunged_at(c, 3, &removed_at_3()),
    },
    Case {
        rule: Rule::CorruptionDetected,
        broken: |c| {
            let other_share = edit(fx().disk(0), |d| {
                d.shares.insert(Epoch(2), fx().share(1, 2));
            });
            read_back(c, Ok(other_share));
        },
        benign: |c| read_back(c, Err("checksum mismatch".to_owned())),
    },
];

#[test]
fn every_invariant_has_a_firing_case() {
    let tested: Vec<&str> = CASES.iter().map(|c| c.rule.name()).collect();
    assert_eq!(tested, INVARIANTS, "one case per invariant, in declaration order");
    assert_eq!(Checker::invariants(), INVARIANTS);
}

#[test]
fn each_case_fires_exactly_its_invariant_and_its_benign_twin_nothing() {
    for case in CASES {
        let name = case.rule.name();
        let mut c = Checker::default();
        (case.broken)(&mut c);
        assert_eq!(names(&c), BTreeSet::from([name.to_owned()]), "{name}: {:?}", c.violations());
        let mut c = Checker::default();
        (case.benign)(&mut c);
        assert!(c.violations().is_empty(), "benign {name}: {:?}", c.violations());
    }
}
