//! Property tests of the peer-message encodings: the binary codec (postcard
//! with a size limit and typed errors) and JSON.
//!
//! - Decoding arbitrary bytes never panics, and whatever decodes re-encodes
//!   and decodes again to an equal value.
//! - Every message kind round-trips through the binary codec and JSON, with
//!   the authority's signed request inside every configuration and commit
//!   certificates in commit advances and expunged notices (signatures are
//!   arbitrary bytes here: the codec does not check them).
//! - Over-long input gives `TooLong`, trailing bytes give `TrailingBytes`.
//! - Member maps are keyed `PART:SERIAL` and malformed keys are rejected.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![allow(clippy::arithmetic_side_effects, missing_docs)]

mod strategies;

use std::collections::BTreeMap;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;
use strategies::{baseboard_id, commit_certificate, configuration, peer_msg, rack_id, share};
use test_strategy::proptest;
use tq_types::codec::{DecodeError, MAX_PEER_MSG_LEN};
use tq_types::{
    AuthoritySignature, BaseboardId, CommitCertificate, CommittedConfig, ConfigDigest,
    Configuration, EncryptedRackSecrets, Epoch, PeerMsg, PeerMsgKind, RackId, ReconfigureMsg, Salt,
    Share, ShareDigest, SignedReconfigure, Threshold,
};

/// Whatever decodes re-encodes, and the re-encoding decodes to an equal
/// value and is itself a fixed point of encoding.
fn check_redecode(msg: &PeerMsg) -> Result<(), TestCaseError> {
    let again = msg.encode().unwrap();
    let back = PeerMsg::decode(&again);
    prop_assert_eq!(back.as_ref(), Ok(msg));
    prop_assert_eq!(back.unwrap().encode().unwrap(), again);
    Ok(())
}

// --- binary codec --------------------------------------------------------------

#[proptest(cases = 4096)]
fn arbitrary_bytes_never_panic(#[strategy(vec(any::<u8>(), 0..=4096))] bytes: Vec<u8>) {
    if let Ok(msg) = PeerMsg::decode(&bytes) {
        check_redecode(&msg)?;
    }
}

/// Arbitrary bytes behind a plausible prefix (a 16-byte rack id and a valid
/// variant tag), so that decoding reaches every variant's payload; short
/// tails often decode (epochs are bare varints).
#[proptest(cases = 4096)]
fn arbitrary_payloads_never_panic(
    #[any] rack: [u8; 16],
    #[strategy(0u8..6)] variant: u8,
    #[strategy(prop_oneof![vec(any::<u8>(), 0..=12), vec(any::<u8>(), 0..=4096)])] tail: Vec<u8>,
) {
    let mut bytes = vec![16];
    bytes.extend_from_slice(&rack);
    bytes.push(variant);
    bytes.extend_from_slice(&tail);
    if let Ok(msg) = PeerMsg::decode(&bytes) {
        check_redecode(&msg)?;
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    Insert(Index, u8),
    Remove(Index),
    Truncate(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::SetByte(i, v)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::Insert(i, v)),
        any::<Index>().prop_map(Mutation::Remove),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// Valid encodings with a few random mutations: decoding never panics, and
/// whatever still decodes round-trips.
#[proptest(cases = 2048)]
fn mutated_encodings_never_panic(
    #[strategy(peer_msg())] msg: PeerMsg,
    #[strategy(vec(mutation(), 1..=4))] mutations: Vec<Mutation>,
) {
    let mut bytes = msg.encode().unwrap();
    for m in &mutations {
        if bytes.is_empty() {
            break;
        }
        match m {
            Mutation::FlipBit(i, b) => {
                let i = i.index(bytes.len());
                bytes[i] ^= 1 << b;
            }
            Mutation::SetByte(i, v) => {
                let i = i.index(bytes.len());
                bytes[i] = *v;
            }
            Mutation::Insert(i, v) => bytes.insert(i.index(bytes.len() + 1), *v),
            Mutation::Remove(i) => {
                bytes.remove(i.index(bytes.len()));
            }
            Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
        }
    }
    if let Ok(decoded) = PeerMsg::decode(&bytes) {
        check_redecode(&decoded)?;
    }
}

#[proptest(cases = 1024)]
fn encode_decode_round_trip(#[strategy(peer_msg())] msg: PeerMsg) {
    let bytes = msg.encode().unwrap();
    prop_assert!(bytes.len() <= MAX_PEER_MSG_LEN);
    prop_assert_eq!(PeerMsg::decode(&bytes), Ok(msg.clone()));
    // Encoding is deterministic.
    prop_assert_eq!(&msg.clone().encode().unwrap(), &bytes);
    // Every strict prefix is an error, never a different message.
    for len in [0, bytes.len() / 2, bytes.len() - 1] {
        prop_assert!(PeerMsg::decode(&bytes[..len]).is_err(), "prefix of {} bytes decoded", len);
    }
}

#[proptest(cases = 1024)]
fn trailing_bytes_are_rejected(
    #[strategy(peer_msg())] msg: PeerMsg,
    #[strategy(vec(any::<u8>(), 1..=64))] extra: Vec<u8>,
) {
    let mut bytes = msg.encode().unwrap();
    bytes.extend_from_slice(&extra);
    prop_assert_eq!(PeerMsg::decode(&bytes), Err(DecodeError::TrailingBytes(extra.len())));
}

/// Input over the limit is `TooLong` whatever it contains, checked before
/// any parsing.
#[proptest(cases = 256)]
fn over_long_input_is_too_long(
    #[strategy(1usize..=4096)] over: usize,
    #[any] fill: u8,
    #[strategy(peer_msg())] msg: PeerMsg,
) {
    let len = MAX_PEER_MSG_LEN + over;
    let garbage = vec![fill; len];
    prop_assert_eq!(
        PeerMsg::decode(&garbage),
        Err(DecodeError::TooLong { len, limit: MAX_PEER_MSG_LEN })
    );
    // A valid encoding followed by padding up to the same length.
    let mut padded = msg.encode().unwrap();
    padded.resize(len, fill);
    prop_assert_eq!(
        PeerMsg::decode(&padded),
        Err(DecodeError::TooLong { len, limit: MAX_PEER_MSG_LEN })
    );
}

/// A real message whose encoding is exactly `MAX_PEER_MSG_LEN` bytes decodes;
/// the same message one byte longer is `TooLong`.
#[proptest(cases = 256)]
fn message_size_limit_is_exact(
    #[strategy(rack_id())] rack_id: RackId,
    #[strategy(configuration())] config: Configuration,
    #[any] salt: [u8; 32],
    #[any] fill: u8,
    #[any] commit_advance: bool,
    #[strategy(share())] share: Share,
    #[strategy(commit_certificate())] certificate: CommitCertificate,
) {
    let build = |data_len: usize| {
        let mut config = config.clone();
        config.encrypted_rack_secrets =
            Some(EncryptedRackSecrets { salt: Salt(salt), data: vec![fill; data_len] });
        let kind = if commit_advance {
            PeerMsgKind::CommitAdvance(CommittedConfig { config, certificate })
        } else {
            PeerMsgKind::Prepare { config, share: share.clone() }
        };
        PeerMsg { rack_id, kind }
    };
    // The data length prefix is a 3-byte varint for every length used here
    // (2^14 <= len < 2^21), so the encoding grows byte for byte with data.
    let probe_len = MAX_PEER_MSG_LEN / 2;
    let probe = build(probe_len).encode().unwrap().len();
    let exact_len = probe_len + (MAX_PEER_MSG_LEN - probe);

    let exact = build(exact_len);
    let bytes = exact.encode().unwrap();
    prop_assert_eq!(bytes.len(), MAX_PEER_MSG_LEN);
    prop_assert_eq!(PeerMsg::decode(&bytes), Ok(exact));

    let over = build(exact_len + 1).encode().unwrap();
    prop_assert_eq!(over.len(), MAX_PEER_MSG_LEN + 1);
    prop_assert_eq!(
        PeerMsg::decode(&over),
        Err(DecodeError::TooLong { len: MAX_PEER_MSG_LEN + 1, limit: MAX_PEER_MSG_LEN })
    );
}

/// In the binary encoding too, members are keyed `PART:SERIAL`: replacing
/// the `:` of a key by another byte makes the message malformed.
#[test]
fn binary_member_key_without_colon_is_rejected() {
    let ids: Vec<BaseboardId> =
        ["PPP-0000001:SERIALA", "PPP-0000002:SERIALB", "PPP-0000003:SERIALC"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
    let config = Configuration {
        rack_id: RackId(uuid::Uuid::from_u128(1)),
        epoch: Epoch(2),
        coordinator: ids[0].clone(),
        members: ids.iter().map(|id| (id.clone(), ShareDigest([0; 32]))).collect(),
        threshold: Threshold(2),
        encrypted_rack_secrets: None,
        reconfigure: Box::new(SignedReconfigure {
            msg: ReconfigureMsg {
                rack_id: RackId(uuid::Uuid::from_u128(1)),
                epoch: Epoch(2),
                last_committed_epoch: None,
                members: ids.iter().cloned().collect(),
                threshold: Threshold(2),
                coordinator: ids[0].clone(),
            },
            signature: AuthoritySignature([7; 64]),
        }),
    };
    let certificate = CommitCertificate {
        rack_id: config.rack_id,
        epoch: config.epoch,
        config_digest: ConfigDigest([9; 32]),
        signature: AuthoritySignature([8; 64]),
    };
    let msg = PeerMsg {
        rack_id: config.rack_id,
        kind: PeerMsgKind::CommitAdvance(CommittedConfig { config, certificate }),
    };
    let bytes = msg.encode().unwrap();
    assert_eq!(PeerMsg::decode(&bytes), Ok(msg));
    for id in &ids {
        let key = id.to_string();
        let at = bytes.windows(key.len()).position(|w| w == key.as_bytes()).unwrap();
        let mut bad = bytes.clone();
        bad[at + key.find(':').unwrap()] = b'_';
        match PeerMsg::decode(&bad) {
            Err(DecodeError::Malformed(_)) => {}
            other => panic!("key {key} without colon: {other:?}"),
        }
    }
}

// --- JSON --------------------------------------------------------------------------

#[proptest(cases = 1024)]
fn json_round_trip(#[strategy(peer_msg())] msg: PeerMsg) {
    let text = serde_json::to_string(&msg).unwrap();
    let back: PeerMsg = serde_json::from_str(&text).unwrap();
    prop_assert_eq!(&back, &msg);
    let value = serde_json::to_value(&msg).unwrap();
    prop_assert_eq!(serde_json::from_value::<PeerMsg>(value.clone()).unwrap(), msg.clone());
    // Pretty-printed JSON is the same value.
    let pretty: serde_json::Value =
        serde_json::from_str(&serde_json::to_string_pretty(&msg).unwrap()).unwrap();
    prop_assert_eq!(pretty, value);
}

/// Members are a JSON object keyed by `PART:SERIAL`, written in identity
/// order, and each key parses back to its identity.
#[proptest(cases = 1024)]
fn json_member_keys_round_trip(#[strategy(configuration())] config: Configuration) {
    let value = serde_json::to_value(&config).unwrap();
    let members = value["members"].as_object().unwrap();
    let parsed: BTreeMap<BaseboardId, &serde_json::Value> =
        members.iter().map(|(k, v)| (k.parse::<BaseboardId>().unwrap(), v)).collect();
    prop_assert_eq!(parsed.len(), config.members.len());
    for ((id, digest), (parsed_id, parsed_digest)) in config.members.iter().zip(&parsed) {
        prop_assert_eq!(id, parsed_id);
        prop_assert_eq!(*parsed_digest, &serde_json::json!(hex_string(&digest.0)));
    }
    // In the text, keys appear in identity order (not string order).
    let text = serde_json::to_string(&config).unwrap();
    let positions: Vec<usize> = config
        .members
        .keys()
        .map(|id| {
            let key = format!("{}:", serde_json::to_string(&id.to_string()).unwrap());
            text.find(&key).unwrap()
        })
        .collect();
    prop_assert!(positions.windows(2).all(|w| w[0] < w[1]), "{:?}", positions);
    // The coordinator, a plain field, is an object with long keys.
    prop_assert_eq!(
        &value["coordinator"],
        &serde_json::json!({
            "part_number": config.coordinator.part_number(),
            "serial_number": config.coordinator.serial_number(),
        })
    );
    let back: Configuration = serde_json::from_value(value).unwrap();
    prop_assert_eq!(&back, &config);
    prop_assert_eq!(serde_json::from_str::<Configuration>(&text).unwrap(), config);
}

/// A single identity round-trips through its `PART:SERIAL` text (the JSON
/// map-key form) and through its JSON object form.
#[proptest(cases = 1024)]
fn baseboard_id_text_and_json_round_trip(#[strategy(baseboard_id())] id: BaseboardId) {
    let text = id.to_string();
    prop_assert_eq!(&text.parse::<BaseboardId>().unwrap(), &id);
    let map: BTreeMap<String, u8> = BTreeMap::from([(text.clone(), 7)]);
    let json = serde_json::to_string(&map).unwrap();
    let back: BTreeMap<String, u8> = serde_json::from_str(&json).unwrap();
    prop_assert_eq!(&back.keys().next().unwrap().parse::<BaseboardId>().unwrap(), &id);
    let obj = serde_json::to_string(&id).unwrap();
    prop_assert_eq!(serde_json::from_str::<BaseboardId>(&obj).unwrap(), id);
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A members map with a malformed key is rejected: no `:`, an empty part or
/// an empty serial, or a duplicate key.
#[proptest(cases = 512)]
fn json_malformed_member_key_is_rejected(
    #[strategy(configuration())] config: Configuration,
    #[strategy(commit_certificate())] certificate: CommitCertificate,
    #[any] which: Index,
    #[strategy(prop_oneof![
        Just("nocolon".to_string()),
        "[A-Za-z0-9-]{1,12}",
        ":[A-Za-z0-9]{1,8}",
        "[A-Za-z0-9]{1,8}:",
        Just(String::new()),
    ])]
    bad_key: String,
) {
    let mut value = serde_json::to_value(&config).unwrap();
    let members = value["members"].as_object_mut().unwrap();
    let victim = members.keys().nth(which.index(members.len())).unwrap().clone();
    let digest = members.remove(&victim).unwrap();
    members.insert(bad_key.clone(), digest);
    let err = serde_json::from_value::<Configuration>(value.clone()).unwrap_err();
    prop_assert!(err.to_string().contains("PART:SERIAL") || err.to_string().contains("empty"));
    // Text input too.
    let text = serde_json::to_string(&value).unwrap();
    prop_assert!(serde_json::from_str::<Configuration>(&text).is_err());
    // And inside a peer message.
    let committed = CommittedConfig { config: config.clone(), certificate };
    let mut msg_value = serde_json::to_value(PeerMsg {
        rack_id: config.rack_id,
        kind: PeerMsgKind::CommitAdvance(committed),
    })
    .unwrap();
    msg_value["kind"]["commit_advance"]["config"] = value;
    prop_assert!(serde_json::from_value::<PeerMsg>(msg_value).is_err());

    // A duplicate key (possible in JSON text only) is rejected too.
    let good = serde_json::to_string(&config).unwrap();
    let first = config.members.iter().next().unwrap();
    let entry = format!(
        "{}:{},",
        serde_json::to_string(&first.0.to_string()).unwrap(),
        serde_json::to_string(first.1).unwrap()
    );
    let dup = good.replacen("\"members\":{", &format!("\"members\":{{{entry}"), 1);
    prop_assert_ne!(&dup, &good);
    let err = serde_json::from_str::<Configuration>(&dup).unwrap_err();
    prop_assert!(err.to_string().contains("duplicate member"), "{}", err);
}

#[test]
fn nocolon_member_key_is_rejected() {
    let text = r#"{
        "rack_id": "00000000-0000-0000-0000-000000000001",
        "epoch": 1,
        "coordinator": {"part_number": "P", "serial_number": "1"},
        "members": {
            "P:1": "0000000000000000000000000000000000000000000000000000000000000000",
            "nocolon": "0000000000000000000000000000000000000000000000000000000000000000",
            "P:3": "0000000000000000000000000000000000000000000000000000000000000000"
        },
        "threshold": 2,
        "encrypted_rack_secrets": null,
        "reconfigure": {
            "msg": {
                "rack_id": "00000000-0000-0000-0000-000000000001",
                "epoch": 1,
                "last_committed_epoch": null,
                "members": [
                    {"part_number": "P", "serial_number": "1"},
                    {"part_number": "P", "serial_number": "2"},
                    {"part_number": "P", "serial_number": "3"}
                ],
                "threshold": 2,
                "coordinator": {"part_number": "P", "serial_number": "1"}
            },
            "signature": "SIGNATURE"
        }
    }"#;
    let text = text.replace("SIGNATURE", &"ab".repeat(64));
    let err = serde_json::from_str::<Configuration>(&text).unwrap_err();
    assert!(err.to_string().contains("PART:SERIAL"), "{err}");
    // The same text with a good key parses.
    let good = text.replace("nocolon", "P:2");
    let config: Configuration = serde_json::from_str(&good).unwrap();
    assert_eq!(config.members.len(), 3);
    assert_eq!(config.x_coordinate(&"P:2".parse().unwrap()), Some(2));
}
