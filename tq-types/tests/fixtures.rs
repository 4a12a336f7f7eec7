//! Every JSON fixture captured from the reference system parses into our
//! types and re-serializes to an equal JSON value.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use serde::Serialize;
use serde::de::DeserializeOwned;
use tq_types::{
    AddSledsRequest, ConfigState, MemberState, RackMembershipState, RackMembershipStatus,
    TrustQuorumConfig,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures");

fn read(name: &str) -> String {
    let path = format!("{FIXTURES}/{name}");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// Parses a fixture into `T`, re-serializes it and compares JSON values.
fn round_trip<T: Serialize + DeserializeOwned>(name: &str) -> T {
    let text = read(name);
    let original: serde_json::Value = serde_json::from_str(&text).unwrap();
    let parsed: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let again = serde_json::to_value(&parsed).unwrap();
    assert_eq!(again, original, "{name} does not re-serialize to the same value");
    parsed
}

#[test]
fn add_sleds_request() {
    let req: AddSledsRequest = round_trip("add-sleds-request.json");
    assert_eq!(req.sled_ids.len(), 1);
    assert_eq!(req.sled_ids.first().unwrap().to_string(), "PPP-PPPPPPP:00000000002");
}

#[test]
fn config_preparing_unacked() {
    let config: TrustQuorumConfig = round_trip("config-epoch2-preparing-unacked.json");
    assert_eq!(config.state, ConfigState::Preparing);
    assert_eq!(config.threshold.0, 3);
    assert_eq!(config.commit_crash_tolerance, 1);
    assert!(config.members.values().all(|m| m.state == MemberState::Unacked));
    assert!(config.members.values().all(|m| m.share_digest.is_none()));
}

#[test]
fn config_preparing_prepared() {
    let config: TrustQuorumConfig = round_trip("config-epoch2-preparing-prepared.json");
    assert_eq!(config.state, ConfigState::Preparing);
    assert!(config.members.values().all(|m| m.state == MemberState::Prepared));
    assert!(config.encrypted_rack_secrets.is_none());
}

#[test]
fn config_committed() {
    let config: TrustQuorumConfig = round_trip("config-epoch2-committed.json");
    assert_eq!(config.state, ConfigState::Committed);
    assert!(config.members.values().all(|m| m.state == MemberState::Committed));
    let sealed = config.encrypted_rack_secrets.as_ref().unwrap();
    assert_eq!(sealed.data.len(), 56);
    assert_eq!(config.time_committed.unwrap().to_string(), "2026-01-14T21:33:04.652543Z");
}

#[test]
fn membership_status_committed() {
    let status: RackMembershipStatus = round_trip("membership-status-epoch2-committed.json");
    assert_eq!(status.state, RackMembershipState::Committed);
    assert_eq!(status.members.len(), 4);
    assert!(status.unacknowledged_members.is_empty());
}

/// The text fixture is a report layout; its test lives in the trust-quorum
/// crate, which renders reports. Here we only check it exists and names
/// epoch 2, so that a renamed fixture is noticed.
#[test]
fn text_report_fixture_present() {
    let text = read("manager-status-epoch2.txt");
    assert!(text.starts_with("Trust Quorum status for rack_id: "));
    assert!(text.contains("epoch: 2:"));
}
