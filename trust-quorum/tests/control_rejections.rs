//! Every refusal of the control plane (operator operations, node results,
//! coordinator statuses that disagree with the ledger or do not embed the
//! request the authority signed), each checked to leave the serialized
//! ledger byte-identical.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
#![allow(clippy::arithmetic_side_effects, missing_docs)]

mod control_support;

/// Named so that `cargo test control` selects these tests.
mod control {
    use crate::control_support::*;
    use tq_types::{CommitStatus, Epoch, RackId, Threshold};
    use trust_quorum::crypto::authority::Authority;
    use trust_quorum::harness::Controller;

    /// Every refusal of the list, each checked to leave the serialized
    /// ledger byte-identical.
    #[test]
    fn rejections_leave_the_ledger_byte_identical() {
        use tq_types::{CommitError, CoordinatorStatus};
        let mut r = rng(13);
        let mut cp = committed_rack(&ids(0..4), &mut r);
        let e2 = cp.add_sleds(ids([4]), t(0), &mut r).unwrap();
        let coord = coordinator(&cp, e2);
        let _ = cp.tick(t(0), &mut r);
        cp.on_reconfigure_result(e2, &coord, Ok(()), t(0)).unwrap();

        let check =
            |cp: &mut Controller, what: &str, f: &mut dyn FnMut(&mut Controller) -> bool| {
                let before = ledger_json(cp);
                assert!(f(cp), "{what}: expected a refusal or ignore");
                assert_eq!(ledger_json(cp), before, "{what}: ledger changed");
            };
        check(&mut cp, "empty sled set", &mut |cp| {
            cp.add_sleds(ids([]), t(1), &mut rng(0)).is_err()
        });
        check(&mut cp, "already members", &mut |cp| {
            cp.add_sleds(ids([0]), t(1), &mut rng(0)).is_err()
        });
        check(&mut cp, "removing non-members", &mut |cp| {
            cp.remove_sleds(ids([8]), t(1), &mut rng(0)).is_err()
        });
        check(&mut cp, "result for unknown epoch", &mut |cp| {
            cp.on_commit_result(Epoch(9), &id(0), Ok(CommitStatus::Committed), t(1)).is_err()
        });
        check(&mut cp, "result for old epoch", &mut |cp| {
            cp.on_commit_result(Epoch(1), &id(0), Ok(CommitStatus::Committed), t(1)).is_err()
        });
        check(&mut cp, "commit ack while preparing", &mut |cp| {
            cp.on_commit_result(e2, &id(0), Ok(CommitStatus::Committed), t(1)).is_err()
        });
        check(&mut cp, "status for old epoch", &mut |cp| {
            cp.on_coordinator_status(Epoch(1), &coord, None, t(1)).is_err()
        });
        check(&mut cp, "status from a non-coordinator", &mut |cp| {
            let other = ids(0..4).into_iter().find(|m| *m != coord).unwrap();
            let s = fake_status(cp, e2, &ids([0]));
            cp.on_coordinator_status(e2, &other, Some(s), t(1)).is_err()
        });
        check(&mut cp, "prepare ack from non-member", &mut |cp| {
            let s = fake_status(cp, e2, &ids([0, 7]));
            cp.on_coordinator_status(e2, &coord, Some(s), t(1)).is_err()
        });
        type Mutate = Box<dyn Fn(&mut CoordinatorStatus)>;
        let mismatches: Vec<(&str, Mutate)> = vec![
            ("rack", Box::new(|s| s.config.rack_id = RackId(uuid::Uuid::nil()))),
            ("epoch", Box::new(|s| s.config.epoch = Epoch(7))),
            ("threshold", Box::new(|s| s.config.threshold = Threshold(4))),
            (
                "members",
                Box::new(|s| {
                    s.config.members.remove(&id(4));
                    s.config.members.insert(id(5), digest(Epoch(2), &id(5)));
                }),
            ),
            ("coordinator", Box::new(|s| s.config.coordinator = id(9))),
            ("missing ciphertext with acks", Box::new(|s| s.config.encrypted_rack_secrets = None)),
            // The embedded request: signed by another key, damaged, or a real
            // signed request of another epoch.
            (
                "request signed by another key",
                Box::new(|s| {
                    let rogue = Authority::generate(&mut rng(0xBAD));
                    let msg = s.config.reconfigure.msg.clone();
                    *s.config.reconfigure = rogue.sign_reconfigure(msg).unwrap();
                }),
            ),
            ("damaged signature", Box::new(|s| s.config.reconfigure.signature.0[0] ^= 1)),
            (
                "signed request of another epoch",
                Box::new(|s| {
                    let mut msg = s.config.reconfigure.msg.clone();
                    msg.epoch = Epoch(1);
                    *s.config.reconfigure = authority().sign_reconfigure(msg).unwrap();
                }),
            ),
        ];
        for (what, mutate) in &mismatches {
            check(&mut cp, what, &mut |cp| {
                let mut s = fake_status(cp, e2, &ids([0, 1]));
                mutate(&mut s);
                cp.on_coordinator_status(e2, &coord, Some(s), t(1)).is_err()
            });
        }
        // Record digests, then a status with a different digest is refused.
        let s = fake_status(&cp, e2, &ids([0]));
        cp.on_coordinator_status(e2, &coord, Some(s.clone()), t(2)).unwrap();
        check(&mut cp, "duplicate poll (no-op)", &mut |cp| {
            cp.on_coordinator_status(e2, &coord, Some(s.clone()), t(3)).is_ok()
        });
        check(&mut cp, "digest differing from the recorded one", &mut |cp| {
            let mut s = fake_status(cp, e2, &ids([0, 1]));
            s.config.members.insert(id(1), digest(Epoch(99), &id(1)));
            cp.on_coordinator_status(e2, &coord, Some(s), t(3)).is_err()
        });
        check(&mut cp, "ciphertext differing from the recorded one", &mut |cp| {
            let mut s = fake_status(cp, e2, &ids([0, 1]));
            s.config.encrypted_rack_secrets = Some(sealed(Epoch(99)));
            cp.on_coordinator_status(e2, &coord, Some(s), t(3)).is_err()
        });
        check(&mut cp, "activation of a sled that never joined", &mut |cp| {
            cp.on_activated(&id(0), t(3)).is_err()
        });

        // Committing: abort refused, duplicate ack is a no-op.
        prepare(&mut cp, &ids(0..5), t(4), &mut r);
        check(&mut cp, "abort after committing", &mut |cp| cp.abort_latest("x", t(5)).is_err());
        check(&mut cp, "pending answer", &mut |cp| {
            cp.on_commit_result(e2, &id(1), Ok(CommitStatus::Pending), t(5)).is_ok()
        });
        check(&mut cp, "error answer", &mut |cp| {
            cp.on_commit_result(e2, &id(1), Err(CommitError::NotPrepared(e2).into()), t(5)).is_ok()
        });
        cp.on_commit_result(e2, &id(0), Ok(CommitStatus::Committed), t(5)).unwrap();
        check(&mut cp, "duplicate ack", &mut |cp| {
            cp.on_commit_result(e2, &id(0), Ok(CommitStatus::Committed), t(6)).is_ok()
        });
        check(&mut cp, "ack from non-member", &mut |cp| {
            cp.on_commit_result(e2, &id(9), Ok(CommitStatus::Committed), t(6)).is_err()
        });
        check(&mut cp, "reconfigure answer after committing", &mut |cp| {
            cp.on_reconfigure_result(e2, &coord, Ok(()), t(6)).is_err()
        });

        // Ack after abort.
        let mut cp = committed_rack(&ids(0..4), &mut r);
        let e = cp.add_sleds(ids([4]), t(0), &mut r).unwrap();
        cp.abort_latest("stop", t(1)).unwrap();
        check(&mut cp, "ack after abort", &mut |cp| {
            cp.on_commit_result(e, &id(0), Ok(CommitStatus::Committed), t(2)).is_err()
        });
        check(&mut cp, "status after abort", &mut |cp| {
            let c = coordinator(cp, e);
            let s = fake_status(cp, e, &ids([0]));
            cp.on_coordinator_status(e, &c, Some(s), t(2)).is_err()
        });
    }
}
