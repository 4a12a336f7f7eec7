//! Proptest strategies for the peer messages and what they carry, shared
//! by the codec property tests.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    missing_docs
)]

use proptest::collection::{btree_map, btree_set, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::Index;
use tq_types::{
    AuthoritySignature, BaseboardId, CommitCertificate, CommittedConfig, ConfigDigest,
    Configuration, EncryptedRackSecrets, Epoch, PeerMsg, PeerMsgKind, RackId, ReconfigureMsg, Salt,
    Share, ShareDigest, SignedReconfigure, Threshold,
};

/// Part numbers: realistic ones and arbitrary text without `:`.
pub fn part_number() -> impl Strategy<Value = String> {
    prop_oneof!["[A-Z]{3}-[A-Z0-9]{7}", "[^:]{1,12}"]
}

/// Serial numbers: realistic ones, arbitrary text, and text containing `:`
/// (only the first `:` of `PART:SERIAL` separates).
pub fn serial_number() -> impl Strategy<Value = String> {
    prop_oneof!["[0-9]{11}", "(?s).{1,12}", "[a-z]{0,4}:[a-z:]{0,4}"]
}

pub fn baseboard_id() -> impl Strategy<Value = BaseboardId> {
    (part_number(), serial_number()).prop_map(|(p, s)| BaseboardId::new(p, s).unwrap())
}

pub fn epoch() -> impl Strategy<Value = Epoch> {
    any::<u64>().prop_map(Epoch)
}

pub fn rack_id() -> impl Strategy<Value = RackId> {
    any::<u128>().prop_map(|r| RackId(uuid::Uuid::from_u128(r)))
}

/// Shares of random length (the codec does not check lengths).
pub fn share() -> impl Strategy<Value = Share> {
    vec(any::<u8>(), 0..=80).prop_map(Share::new)
}

pub fn encrypted_rack_secrets() -> impl Strategy<Value = EncryptedRackSecrets> {
    (any::<[u8; 32]>(), vec(any::<u8>(), 0..=900))
        .prop_map(|(salt, data)| EncryptedRackSecrets { salt: Salt(salt), data })
}

/// Arbitrary signature bytes (the codec does not verify them).
pub fn signature() -> impl Strategy<Value = AuthoritySignature> {
    vec(any::<u8>(), 64).prop_map(|bytes| AuthoritySignature(bytes.try_into().unwrap()))
}

/// Signed reconfiguration requests: any fields, any signature.
pub fn signed_reconfigure() -> impl Strategy<Value = SignedReconfigure> {
    (
        rack_id(),
        epoch(),
        option::of(epoch()),
        btree_set(baseboard_id(), 0..=32),
        any::<u8>(),
        baseboard_id(),
        signature(),
    )
        .prop_map(|(rack_id, epoch, last, members, threshold, coordinator, signature)| {
            let msg = ReconfigureMsg {
                rack_id,
                epoch,
                last_committed_epoch: last,
                members,
                threshold: Threshold(threshold),
                coordinator,
            };
            SignedReconfigure { msg, signature }
        })
}

/// Configurations with 3..=32 members; the coordinator is usually a member.
/// The embedded request usually agrees with the configuration (as a real
/// one does), else is arbitrary.
pub fn configuration() -> impl Strategy<Value = Configuration> {
    (
        rack_id(),
        epoch(),
        btree_map(baseboard_id(), any::<[u8; 32]>(), 3..=32),
        any::<Index>(),
        option::weighted(0.1, baseboard_id()),
        any::<u8>(),
        option::of(encrypted_rack_secrets()),
        (option::weighted(0.2, signed_reconfigure()), signature()),
    )
        .prop_map(
            |(rack_id, epoch, members, coord, outsider, threshold, ers, (other, sig))| {
                let coordinator = outsider.unwrap_or_else(|| {
                    members.keys().nth(coord.index(members.len())).unwrap().clone()
                });
                let reconfigure = other.unwrap_or_else(|| SignedReconfigure {
                    msg: ReconfigureMsg {
                        rack_id,
                        epoch,
                        last_committed_epoch: ers.as_ref().map(|_| Epoch(epoch.0.wrapping_sub(1))),
                        members: members.keys().cloned().collect(),
                        threshold: Threshold(threshold),
                        coordinator: coordinator.clone(),
                    },
                    signature: sig,
                });
                Configuration {
                    rack_id,
                    epoch,
                    coordinator,
                    members: members.into_iter().map(|(id, d)| (id, ShareDigest(d))).collect(),
                    threshold: Threshold(threshold),
                    encrypted_rack_secrets: ers,
                    reconfigure: Box::new(reconfigure),
                }
            },
        )
}

/// Commit certificates: any fields, any signature.
pub fn commit_certificate() -> impl Strategy<Value = CommitCertificate> {
    (rack_id(), epoch(), any::<[u8; 32]>(), signature()).prop_map(
        |(rack_id, epoch, digest, signature)| CommitCertificate {
            rack_id,
            epoch,
            config_digest: ConfigDigest(digest),
            signature,
        },
    )
}

/// A configuration with a certificate, usually naming its rack and epoch.
pub fn committed_config() -> impl Strategy<Value = CommittedConfig> {
    (configuration(), commit_certificate(), any::<bool>()).prop_map(
        |(config, mut certificate, agree)| {
            if agree {
                certificate.rack_id = config.rack_id;
                certificate.epoch = config.epoch;
            }
            CommittedConfig { config, certificate }
        },
    )
}

/// Every `PeerMsgKind` variant.
pub fn peer_msg_kind() -> impl Strategy<Value = PeerMsgKind> {
    prop_oneof![
        (configuration(), share())
            .prop_map(|(config, share)| PeerMsgKind::Prepare { config, share }),
        epoch().prop_map(PeerMsgKind::PrepareAck),
        epoch().prop_map(PeerMsgKind::GetShare),
        (epoch(), share()).prop_map(|(epoch, share)| PeerMsgKind::Share { epoch, share }),
        committed_config().prop_map(PeerMsgKind::CommitAdvance),
        committed_config().prop_map(PeerMsgKind::Expunged),
    ]
}

pub fn peer_msg() -> impl Strategy<Value = PeerMsg> {
    (rack_id(), peer_msg_kind()).prop_map(|(rack_id, kind)| PeerMsg { rack_id, kind })
}
