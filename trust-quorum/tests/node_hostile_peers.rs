//! A compromised member attacks its peers over authenticated links
//! (issue 12, "signed decisions"): one test per finding. Each forges what
//! a lying peer can forge, checks that the honest node takes nothing from
//! it (state byte-identical, nothing sent), and then checks that the honest
//! path still works: the real request is accepted, commits, and the real
//! secret loads (docs/protocol.md section 8.4).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::panic,
    missing_docs
)]

mod support;

use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use support::{
    Cluster, certify, commit_request, committed_config, id, ids, prepare_and_commit_request, rack,
    reconfigure_msg, rogue_authority, sign,
};
use tq_types::{
    AuthorityError, AuthoritySignature, BaseboardId, CommitError, CommitRequest, CommitStatus,
    CommittedConfig, Configuration, Epoch, NodeRefusal, PeerMsg, PeerMsgKind,
    PrepareAndCommitError, RackId, ReconfigurationError, Share, SignedField, SignedReconfigure,
    Threshold,
};
use trust_quorum::crypto::authority::Authority;
use trust_quorum::crypto::{self, RackSecret};

/// The compromised member.
const ATTACKER: usize = 4;
/// The honest member it attacks.
const VICTIM: usize = 0;

/// Epoch 1 committed on sleds 0..5 (K = 3) of 6; sled 5 is a spare.
fn committed() -> Cluster {
    let mut c = Cluster::new(6, 12);
    c.reconfigure_and_commit(&id(0), 1, None, &ids(0..5));
    c
}

fn msg(kind: PeerMsgKind) -> PeerMsg {
    PeerMsg { rack_id: rack(), kind }
}

fn config(c: &Cluster, epoch: u64) -> Configuration {
    c.config(epoch).clone()
}

/// A configuration the attacker builds for `epoch`, coordinated by
/// `coordinator`, building on epoch 1: real shares of a secret of its
/// choosing (every member's share matches its digest) and a sealed "prior
/// secret" of its choosing, its embedded request signed by `signer`.
struct Forged {
    config: Configuration,
    shares: BTreeMap<BaseboardId, Share>,
}

fn forge(
    epoch: u64,
    coordinator: usize,
    members: &BTreeSet<BaseboardId>,
    signer: &Authority,
) -> Forged {
    let mut rng = ChaCha20Rng::seed_from_u64(epoch);
    let secret = RackSecret::generate(&mut rng);
    let threshold = Threshold(3);
    let shares = crypto::split(&secret, threshold, members.len(), &mut rng).unwrap();
    let prior = BTreeMap::from([(Epoch(1), RackSecret::generate(&mut rng))]);
    let sealed = crypto::seal(&prior, rack(), Epoch(epoch), &secret, &mut rng).unwrap();
    let request = reconfigure_msg(&id(coordinator), epoch, Some(1), members, threshold.0);
    let config = Configuration {
        rack_id: rack(),
        epoch: Epoch(epoch),
        coordinator: id(coordinator),
        members: members
            .iter()
            .zip(&shares)
            .map(|(m, s)| (m.clone(), crypto::share_digest(s)))
            .collect(),
        threshold,
        encrypted_rack_secrets: Some(sealed),
        reconfigure: Box::new(signer.sign_reconfigure(request).unwrap()),
    };
    Forged { config, shares: members.iter().cloned().zip(shares).collect() }
}

impl Forged {
    fn prepare_for(&self, who: usize) -> PeerMsg {
        let share = self.shares[&id(who)].clone();
        msg(PeerMsgKind::Prepare { config: self.config.clone(), share })
    }
}

/// Delivers `m` from `from` to `to` and checks that `to` changed nothing
/// durable and sent nothing.
fn assert_ignored(c: &mut Cluster, from: usize, to: usize, m: PeerMsg) {
    let what = m.kind.name();
    let before = c.state(&id(to)).encode().unwrap();
    let sent = c.sent().len();
    c.call(&id(to), |n, ctx| n.handle(ctx, id(from), m));
    assert_eq!(c.state(&id(to)).encode().unwrap(), before, "{what} changed the state");
    assert_eq!(c.sent().len(), sent, "{what} was answered: {:?}", &c.sent()[sent..]);
}

/// `signature` with one bit flipped.
fn flipped(mut signature: AuthoritySignature) -> AuthoritySignature {
    signature.0[7] ^= 1;
    signature
}

/// The honest rack still works: epoch `epoch` (building on `last`, over
/// sleds 0..5) is accepted by `coordinator`, commits everywhere, every
/// member loads the same secret, and `old` is still the secret of `last`.
fn honest_epoch_works(
    c: &mut Cluster,
    coordinator: usize,
    epoch: u64,
    last: u64,
    old: &RackSecret,
) {
    c.reconfigure_and_commit(&id(coordinator), epoch, Some(last), &ids(0..5));
    let secret = c.load_secret(&id(1), epoch);
    for m in ids(0..5) {
        assert_eq!(c.state(&m).latest_committed_epoch(), Some(Epoch(epoch)), "{m}");
        assert_eq!(c.load_secret(&m, epoch), secret, "{m} loads the real secret");
        assert_eq!(c.load_secret(&m, last), *old, "{m} loads the real prior secret");
    }
    assert!(c.alarms().is_empty(), "{:?}", c.alarms());
}

#[test]
fn forged_commit_is_neither_stored_nor_committed() {
    let mut c = committed();
    let real = c.load_secret(&id(1), 1);
    let rogue = rogue_authority();
    let members = ids(0..5);
    let config1 = config(&c, 1);
    // A configuration for epoch 77 naming the attacker as coordinator:
    // signed by another authority, or embedding the real signed request of
    // epoch 1; with a certificate by another authority, or the real
    // certificate of epoch 1.
    let signed_by_rogue = forge(77, ATTACKER, &members, &rogue);
    let mut replayed_request = forge(77, ATTACKER, &members, &rogue);
    replayed_request.config.reconfigure = config1.reconfigure.clone();
    for forged in [&signed_by_rogue, &replayed_request] {
        for certificate in [rogue.certify(&forged.config).unwrap(), certify(&config1)] {
            assert_ignored(&mut c, ATTACKER, VICTIM, forged.prepare_for(VICTIM));
            let advance = CommittedConfig { config: forged.config.clone(), certificate };
            assert_ignored(&mut c, ATTACKER, VICTIM, msg(PeerMsgKind::CommitAdvance(advance)));
        }
    }
    let state = c.state(&id(VICTIM));
    assert_eq!(state.configs().keys().copied().collect::<Vec<_>>(), [Epoch(1)]);
    assert_eq!(state.latest_committed_epoch(), Some(Epoch(1)));
    c.call(&id(VICTIM), |n, _| n.clear_secrets());
    assert_eq!(c.load_secret(&id(VICTIM), 1), real, "the real secret, not the attacker's");
    // An honest member asking the victim for its share still gets it (not
    // `Expunged(77)`).
    let sent = c.sent().len();
    c.call(&id(VICTIM), |n, ctx| n.handle(ctx, id(2), msg(PeerMsgKind::GetShare(Epoch(1)))));
    assert!(
        matches!(&c.sent()[sent..], [e] if matches!(e.msg.kind, PeerMsgKind::Share { .. })),
        "{:?}",
        &c.sent()[sent..]
    );
    c.deliver_all();
    // The real Reconfigure, with the victim as coordinator, is accepted.
    honest_epoch_works(&mut c, VICTIM, 2, 1, &real);
}

#[test]
fn prepare_of_a_real_request_not_from_its_coordinator_is_ignored() {
    // The real epoch 2 is coordinated by sled 1. The attacker, a member,
    // holds the real signed request once its own prepare arrives, and
    // rebuilds the configuration with shares of its own.
    let mut c = committed();
    let real = c.load_secret(&id(1), 1);
    c.reconfigure(&id(1), 2, Some(1), &ids(0..5));
    let real_request = sign(reconfigure_msg(&id(1), 2, Some(1), &ids(0..5), 3));
    let mut forged = forge(2, 1, &ids(0..5), &rogue_authority());
    *forged.config.reconfigure = real_request.clone();
    // Sent as is: not from the configuration's coordinator.
    assert_ignored(&mut c, ATTACKER, VICTIM, forged.prepare_for(VICTIM));
    // Naming the attacker as coordinator: not what the authority signed.
    forged.config.coordinator = id(ATTACKER);
    assert_ignored(&mut c, ATTACKER, VICTIM, forged.prepare_for(VICTIM));
    assert!(c.state(&id(VICTIM)).config(Epoch(2)).is_none());
    // The real prepares are taken, and epoch 2 commits with the real chain.
    c.deliver_all();
    assert_eq!(c.acks(&id(1), 2), ids(0..5));
    assert_eq!(config(&c, 2).reconfigure, Box::new(real_request));
    c.commit(&id(1), 2);
    assert_eq!(c.load_secret(&id(VICTIM), 1), real);
    assert_eq!(c.load_secret(&id(VICTIM), 2), c.load_secret(&id(3), 2));
    assert!(c.alarms().is_empty(), "{:?}", c.alarms());
}

#[test]
fn forged_expunge_does_not_expunge_but_a_certified_removal_does() {
    const TARGET: usize = 3;
    let mut c = committed();
    let rogue = rogue_authority();
    let others = ids([0, 1, 2, 4]);
    let expunged = |committed: CommittedConfig| msg(PeerMsgKind::Expunged(committed));
    // A forged removal at u64::MAX: by another authority, or with the real
    // certificate of epoch 1.
    let forged = forge(u64::MAX, ATTACKER, &others, &rogue).config;
    for certificate in [rogue.certify(&forged).unwrap(), certify(&config(&c, 1))] {
        let m = expunged(CommittedConfig { config: forged.clone(), certificate });
        assert_ignored(&mut c, ATTACKER, TARGET, m);
    }
    // The real certificate of a configuration that lists the target.
    let listed = expunged(committed_config(&config(&c, 1)));
    assert_ignored(&mut c, ATTACKER, TARGET, listed);
    // Epoch 2 removes the target, epoch 3 adds it back; both commit.
    // (Sleds keep only their newest committed configuration, so epoch 2's
    // is read before epoch 3 commits.)
    c.reconfigure_and_commit(&id(0), 2, Some(1), &others);
    let config2 = config(&c, 2);
    c.reconfigure_and_commit(&id(1), 3, Some(2), &ids(0..5));
    // The removal of epoch 2, with a damaged signature.
    let mut damaged = committed_config(&config2);
    damaged.certificate.signature = flipped(damaged.certificate.signature);
    assert_ignored(&mut c, ATTACKER, TARGET, expunged(damaged));
    // The real removal of epoch 2 is older than the target's epoch 3.
    assert_ignored(&mut c, ATTACKER, TARGET, expunged(committed_config(&config2)));
    // Nor does the configuration that re-admitted it.
    let listed = expunged(committed_config(&config(&c, 3)));
    assert_ignored(&mut c, ATTACKER, TARGET, listed);
    assert_eq!(c.state(&id(TARGET)).expunged(), None);
    assert_eq!(c.load_secret(&id(TARGET), 3), c.load_secret(&id(0), 3));
    // Epoch 4 removes it for real. The forged forms of that removal are
    // still ignored...
    c.reconfigure_and_commit(&id(0), 4, Some(3), &others);
    let config4 = config(&c, 4);
    let by_rogue = rogue.certify(&config4).unwrap();
    let mut damaged = committed_config(&config4);
    damaged.certificate.signature = flipped(damaged.certificate.signature);
    for m in
        [expunged(CommittedConfig { config: config4, certificate: by_rogue }), expunged(damaged)]
    {
        assert_ignored(&mut c, ATTACKER, TARGET, m);
    }
    // ...and the members' own answer to its share request expunges it.
    c.call(&id(TARGET), |n, _| n.clear_secrets());
    assert_eq!(c.call(&id(TARGET), |n, ctx| n.load_rack_secret(ctx, Epoch(3))), Ok(None));
    c.deliver_all();
    let ex = c.state(&id(TARGET)).expunged().cloned().expect("expunged by epoch 4");
    assert_eq!(ex.epoch, Epoch(4));
    assert!(others.contains(&ex.from));
    assert!(c.alarms().is_empty(), "{:?}", c.alarms());
}

#[test]
fn flood_and_huge_epoch_prepares_are_ignored() {
    let mut c = committed();
    let real = c.load_secret(&id(1), 1);
    let rogue = rogue_authority();
    let members = ids(0..5);
    // At u64::MAX: unsigned (a zero signature), and signed by another key.
    let mut unsigned = forge(u64::MAX, ATTACKER, &members, &rogue);
    unsigned.config.reconfigure.signature = AuthoritySignature([0; 64]);
    let signed_by_rogue = forge(u64::MAX, ATTACKER, &members, &rogue);
    // And a flood of forged prepares for later epochs.
    let flood = (2..72).map(|e| forge(e, ATTACKER, &members, &rogue));
    for forged in [unsigned, signed_by_rogue].into_iter().chain(flood) {
        for victim in [0, 1, 2, 3] {
            assert_ignored(&mut c, ATTACKER, victim, forged.prepare_for(victim));
        }
    }
    for victim in [0, 1, 2, 3] {
        let state = c.state(&id(victim));
        assert_eq!(state.latest_config().map(|c| c.epoch), Some(Epoch(1)), "{victim}");
    }
    // Later real Reconfigures still work (no `StaleEpoch`).
    honest_epoch_works(&mut c, VICTIM, 2, 1, &real);
}

#[test]
fn commit_with_a_certificate_for_another_configuration_is_refused() {
    let mut c = committed();
    let real = c.load_secret(&id(1), 1);
    // Epoch 2 is prepared everywhere but sled 3, which is down.
    c.crash(&id(3));
    c.reconfigure(&id(1), 2, Some(1), &ids(0..5));
    c.deliver_all();
    c.restart(&id(3));
    c.net().clear(); // the prepare re-sent on reconnecting is lost too
    assert_eq!(c.acks(&id(1), 2), ids([0, 1, 2, 4]));
    let config2 = config(&c, 2);
    let other_digest = Configuration { threshold: Threshold(2), ..config2.clone() };
    let other_rack =
        Configuration { rack_id: RackId(uuid::Uuid::from_u128(0xbad)), ..config2.clone() };
    let real_certificate = certify(&config2);
    let damaged = {
        let mut d = real_certificate;
        d.signature = flipped(d.signature);
        d
    };
    let mismatch = |field| NodeRefusal::Unauthorized(AuthorityError::CertificateMismatch(field));
    let bad_signature = NodeRefusal::Unauthorized(AuthorityError::BadSignature);
    let cases = [
        (certify(&config(&c, 1)), mismatch(SignedField::Epoch)),
        (certify(&other_digest), mismatch(SignedField::Configuration)),
        (certify(&other_rack), mismatch(SignedField::Rack)),
        (rogue_authority().certify(&config2).unwrap(), bad_signature.clone()),
        (damaged, bad_signature),
    ];
    for (certificate, refusal) in cases {
        let before = c.state(&id(VICTIM)).encode().unwrap();
        let req = CommitRequest { rack_id: rack(), epoch: Epoch(2), certificate };
        let out = c.request(&id(VICTIM), |n, ctx| n.commit_configuration(ctx, req));
        assert_eq!(out, Err(CommitError::Refused(refusal.clone())));
        assert_eq!(c.state(&id(VICTIM)).encode().unwrap(), before);
        // The same certificate with the configuration, to the sled that
        // missed the prepare.
        let before = c.state(&id(3)).encode().unwrap();
        let req = tq_types::PrepareAndCommitRequest { config: config2.clone(), certificate };
        let out = c.request(&id(3), |n, ctx| n.prepare_and_commit(ctx, req));
        assert_eq!(out, Err(PrepareAndCommitError::Refused(refusal)));
        assert_eq!(c.state(&id(3)).encode().unwrap(), before);
    }
    assert_eq!(c.state(&id(VICTIM)).latest_committed_epoch(), Some(Epoch(1)));
    assert!(c.state(&id(3)).config(Epoch(2)).is_none());
    // The real certificate commits.
    let out =
        c.request(&id(VICTIM), |n, ctx| n.commit_configuration(ctx, commit_request(&config2)));
    assert_eq!(out, Ok(CommitStatus::Committed));
    let req = prepare_and_commit_request(&config2);
    assert_eq!(
        c.request(&id(3), |n, ctx| n.prepare_and_commit(ctx, req)),
        Ok(CommitStatus::Pending)
    );
    c.commit(&id(1), 2);
    assert_eq!(c.state(&id(VICTIM)).certificate(Epoch(2)), Some(&real_certificate));
    assert_eq!(c.load_secret(&id(3), 2), c.load_secret(&id(VICTIM), 2));
    assert_eq!(c.load_secret(&id(3), 1), real);
    assert!(c.alarms().is_empty(), "{:?}", c.alarms());
}

#[test]
fn reconfigure_signed_by_another_key_or_for_another_coordinator_is_refused() {
    let mut c = committed();
    let real = c.load_secret(&id(1), 1);
    let request = |coordinator: usize, epoch: u64| {
        reconfigure_msg(&id(coordinator), epoch, Some(1), &ids(0..5), 3)
    };
    // Requests for the victim at `epoch` that the authority did not sign as
    // they are, and a real one for another coordinator.
    let attacks = |epoch: u64| {
        let mut tampered = sign(request(VICTIM, epoch));
        tampered.msg.threshold = Threshold(2);
        let zero = AuthoritySignature([0; 64]);
        let rogue = rogue_authority().sign_reconfigure(request(VICTIM, epoch)).unwrap();
        [
            (rogue, AuthorityError::BadSignature),
            (tampered, AuthorityError::BadSignature),
            (
                SignedReconfigure { msg: request(VICTIM, epoch), signature: zero },
                AuthorityError::BadSignature,
            ),
            (sign(request(1, epoch)), AuthorityError::NotTheCoordinator),
        ]
    };
    let unauthorized = |e| Err(ReconfigurationError::Refused(NodeRefusal::Unauthorized(e)));
    for (m, error) in attacks(2) {
        let before = c.state(&id(VICTIM)).encode().unwrap();
        let sent = c.sent().len();
        let out = c.request(&id(VICTIM), |n, ctx| n.coordinate_reconfiguration(ctx, m));
        assert_eq!(out, unauthorized(error));
        assert_eq!(c.state(&id(VICTIM)).encode().unwrap(), before);
        assert_eq!(c.sent().len(), sent);
        assert!(c.coordinator_status(&id(VICTIM)).is_none());
    }
    // While coordinating the real epoch 2, a later unauthorized request
    // does not cancel it.
    c.reconfigure(&id(VICTIM), 2, Some(1), &ids(0..5));
    for (m, error) in attacks(3) {
        let out = c.request(&id(VICTIM), |n, ctx| n.coordinate_reconfiguration(ctx, m));
        assert_eq!(out, unauthorized(error));
        assert_eq!(c.coordinator_status(&id(VICTIM)).unwrap().config.epoch, Epoch(2));
    }
    c.deliver_all();
    assert_eq!(c.acks(&id(VICTIM), 2), ids(0..5));
    c.commit(&id(VICTIM), 2);
    assert_eq!(c.load_secret(&id(2), 1), real);
    assert_eq!(c.load_secret(&id(2), 2), c.load_secret(&id(VICTIM), 2));
    assert!(c.alarms().is_empty(), "{:?}", c.alarms());
}

#[test]
fn get_share_from_a_non_member_never_yields_a_share() {
    let mut c = committed();
    // Epoch 2 removes sled 4 and commits; epoch 3 (without it) is prepared
    // only. Sled 5 was never a member.
    c.reconfigure_and_commit(&id(0), 2, Some(1), &ids(0..4));
    c.reconfigure(&id(1), 3, Some(2), &ids(0..4));
    c.deliver_all();
    let removal = committed_config(&config(&c, 2));
    for asker in [4, 5] {
        for epoch in [0, 1, 2, 3, 4, u64::MAX] {
            for member in 0..4 {
                let sent = c.sent().len();
                let m = msg(PeerMsgKind::GetShare(Epoch(epoch)));
                c.call(&id(member), |n, ctx| n.handle(ctx, id(asker), m));
                for e in &c.sent()[sent..] {
                    assert_eq!(e.to, id(asker));
                    // At most the proof that a committed configuration
                    // leaves the asker out.
                    assert_eq!(
                        e.msg.kind,
                        PeerMsgKind::Expunged(removal.clone()),
                        "{member} answered sled {asker}'s GetShare({epoch})"
                    );
                }
            }
        }
    }
    c.net().clear();
    // Members still get shares: every member of epoch 2 loads its secret.
    let secret = c.load_secret(&id(0), 2);
    for m in ids(1..4) {
        assert_eq!(c.load_secret(&m, 2), secret);
    }
}
