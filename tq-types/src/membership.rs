//! Control-plane views: configuration and member states, the detailed
//! configuration view, the operator's membership status and the add-sleds
//! request body.
//!
//! The JSON shapes follow the fixtures captured from the reference system
//! exactly: the same keys, nesting, value types and enum spellings.

use core::fmt;
use core::str::FromStr;
use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::{EncryptedRackSecrets, ShareDigest};
use crate::ids::{BaseboardId, Epoch, RackId, Threshold};
use crate::serde_util::member_map;

/// A point in time, UTC, with microsecond precision.
///
/// It always prints and serializes as RFC 3339 in UTC with exactly six
/// fractional digits and a `Z` (`2026-01-14T21:33:03.864617Z`), and parses
/// any RFC 3339 text (other offsets are converted to UTC; digits below the
/// microsecond are dropped). Only years 0000 to 9999 are representable, so
/// every value prints as valid RFC 3339 and parses back to itself.
///
/// The libraries never read a clock: time always comes in as an argument.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(value_type = String, format = DateTime, example = "2026-01-14T21:33:03.864617Z")
)]
pub struct Timestamp(DateTime<Utc>);

/// Why a text is not a valid [`Timestamp`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum TimestampError {
    /// The text is not RFC 3339.
    #[error("timestamp is not RFC 3339")]
    NotRfc3339,
    /// The instant is outside the years 0000 to 9999.
    #[error("timestamp is outside the years 0000 to 9999")]
    OutOfRange,
}

impl Timestamp {
    /// 1970-01-01T00:00:00.000000Z.
    pub const UNIX_EPOCH: Timestamp = Timestamp(DateTime::UNIX_EPOCH);

    /// The earliest representable instant, `0000-01-01T00:00:00.000000Z`.
    const MIN_MICROS: i64 = -62_167_219_200_000_000;
    /// The latest representable instant, `9999-12-31T23:59:59.999999Z`.
    const MAX_MICROS: i64 = 253_402_300_799_999_999;

    /// The instant `micros` microseconds after the Unix epoch, or `None`
    /// outside the years 0000 to 9999.
    pub fn from_unix_micros(micros: i64) -> Option<Timestamp> {
        if !(Self::MIN_MICROS..=Self::MAX_MICROS).contains(&micros) {
            return None;
        }
        DateTime::from_timestamp_micros(micros).map(Timestamp)
    }

    /// Wraps a chrono instant, dropping digits below the microsecond; `None`
    /// outside the years 0000 to 9999.
    pub fn from_datetime(datetime: DateTime<Utc>) -> Option<Timestamp> {
        Self::from_unix_micros(datetime.timestamp_micros())
    }

    /// Microseconds since the Unix epoch.
    pub fn unix_micros(&self) -> i64 {
        self.0.timestamp_micros()
    }

    /// The chrono instant.
    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }

    /// Parses RFC 3339 text (see the type's documentation).
    pub fn parse_rfc3339(text: &str) -> Result<Timestamp, TimestampError> {
        let parsed = DateTime::parse_from_rfc3339(text).map_err(|_| TimestampError::NotRfc3339)?;
        Self::from_datetime(parsed.with_timezone(&Utc)).ok_or(TimestampError::OutOfRange)
    }

    /// This instant plus `duration` (truncated to whole microseconds), or
    /// `None` past the year 9999.
    pub fn checked_add(&self, duration: Duration) -> Option<Timestamp> {
        let micros = i64::try_from(duration.as_micros()).ok()?;
        Self::from_unix_micros(self.unix_micros().checked_add(micros)?)
    }

    /// The time elapsed from `earlier` to this instant; zero if `earlier` is
    /// not before it.
    pub fn saturating_duration_since(&self, earlier: Timestamp) -> Duration {
        match self.unix_micros().checked_sub(earlier.unix_micros()) {
            Some(diff) => u64::try_from(diff).map(Duration::from_micros).unwrap_or(Duration::ZERO),
            None => Duration::ZERO,
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Micros, true))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_rfc3339(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Timestamp::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

/// The state of one configuration in the control plane's ledger
/// (docs/protocol.md section 5.2).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConfigState {
    /// The coordinator is preparing the configuration; not yet decided.
    Preparing,
    /// Enough members prepared: the configuration will commit (irreversible).
    Committing,
    /// Every member acknowledged the commit.
    Committed,
    /// A newer configuration was installed once enough members, but not all,
    /// acknowledged the commit.
    CommittedPartially,
    /// Abandoned before committing; its epoch is never reused.
    Aborted,
}

impl ConfigState {
    /// Whether no further transition is possible.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ConfigState::Committed | ConfigState::CommittedPartially | ConfigState::Aborted
        )
    }

    /// Whether the configuration is committing or committed: its membership
    /// is the rack's.
    pub fn is_committed_or_committing(self) -> bool {
        matches!(
            self,
            ConfigState::Committing | ConfigState::Committed | ConfigState::CommittedPartially
        )
    }
}

impl fmt::Display for ConfigState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigState::Preparing => "preparing",
            ConfigState::Committing => "committing",
            ConfigState::Committed => "committed",
            ConfigState::CommittedPartially => "committed_partially",
            ConfigState::Aborted => "aborted",
        })
    }
}

/// The state of one member within one configuration (docs/protocol.md section
/// 5.3). States only move forward.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// No acknowledgement seen yet.
    Unacked,
    /// The member acknowledged the prepare.
    Prepared,
    /// The member acknowledged the commit.
    Committed,
}

impl fmt::Display for MemberState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MemberState::Unacked => "unacked",
            MemberState::Prepared => "prepared",
            MemberState::Committed => "committed",
        })
    }
}

/// One member's entry in a [`TrustQuorumConfig`].
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrustQuorumMemberData {
    /// The digest of the member's share, once the coordinator reported it.
    pub share_digest: Option<ShareDigest>,
    /// How far the member got.
    pub state: MemberState,
    /// When the commit acknowledgement was recorded.
    pub time_committed: Option<Timestamp>,
    /// When the prepare acknowledgement was recorded.
    pub time_prepared: Option<Timestamp>,
}

/// The control plane's detailed view of one configuration, as in
/// `fixtures/config-epoch2-*.json`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrustQuorumConfig {
    /// Why the configuration was aborted, if it was.
    pub abort_reason: Option<String>,
    /// Prepare acknowledgements required beyond the threshold (Z).
    pub commit_crash_tolerance: u8,
    /// The node chosen to build and prepare the configuration.
    pub coordinator: BaseboardId,
    /// Sealed secrets of earlier configurations, once the coordinator
    /// reported them.
    pub encrypted_rack_secrets: Option<EncryptedRackSecrets>,
    /// The configuration's epoch.
    pub epoch: Epoch,
    /// The committed epoch this configuration builds on; `None` for a rack's
    /// first configuration.
    pub last_committed_epoch: Option<Epoch>,
    /// Every member, keyed `PART:SERIAL`.
    #[serde(with = "member_map")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = BTreeMap<String, TrustQuorumMemberData>)
    )]
    pub members: BTreeMap<BaseboardId, TrustQuorumMemberData>,
    /// The rack.
    pub rack_id: RackId,
    /// The configuration's state.
    pub state: ConfigState,
    /// Shares needed to rebuild the rack secret (K).
    pub threshold: Threshold,
    /// When the configuration was aborted.
    pub time_aborted: Option<Timestamp>,
    /// When every member had committed (or a newer configuration marked it
    /// committed partially).
    pub time_committed: Option<Timestamp>,
    /// When enough members had prepared for it to commit.
    pub time_committing: Option<Timestamp>,
    /// When the control plane recorded the proposal.
    pub time_created: Timestamp,
}

/// The operator-facing state of a membership change.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RackMembershipState {
    /// Preparing or committing.
    InProgress,
    /// Committed, fully or partially.
    Committed,
    /// Aborted.
    Aborted,
}

impl From<ConfigState> for RackMembershipState {
    fn from(state: ConfigState) -> Self {
        match state {
            ConfigState::Preparing | ConfigState::Committing => RackMembershipState::InProgress,
            ConfigState::Committed | ConfigState::CommittedPartially => {
                RackMembershipState::Committed
            }
            ConfigState::Aborted => RackMembershipState::Aborted,
        }
    }
}

/// The operator's status of a membership change, looked up by the epoch the
/// change returned, as in `fixtures/membership-status-epoch2-committed.json`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RackMembershipStatus {
    /// The epoch of the change.
    pub epoch: Epoch,
    /// The proposed membership, in identity order.
    pub members: BTreeSet<BaseboardId>,
    /// The rack.
    pub rack_id: RackId,
    /// Whether the change is in progress, committed or aborted.
    pub state: RackMembershipState,
    /// When the change was aborted.
    pub time_aborted: Option<Timestamp>,
    /// When the change committed.
    pub time_committed: Option<Timestamp>,
    /// When the change was requested.
    pub time_created: Timestamp,
    /// Members that have not acknowledged the commit.
    pub unacknowledged_members: BTreeSet<BaseboardId>,
}

/// The body of an "add sleds" request, as in `fixtures/add-sleds-request.json`:
/// `{"sled_ids": [{"part": ..., "serial": ...}]}`.
///
/// Each sled is written with the short keys `part` and `serial`; input also
/// accepts `part_number` and `serial_number`. Listing a sled twice is an
/// error.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddSledsRequest {
    /// The sleds to add, in identity order.
    #[serde(with = "short_id_set")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<short_id_set::ShortId<'static>>))]
    pub sled_ids: BTreeSet<BaseboardId>,
}

/// A set of identities written with the short keys `part` / `serial`.
mod short_id_set {
    use super::*;
    use serde::ser::SerializeSeq;

    /// A sled written with the short keys (the long keys `part_number` and
    /// `serial_number` are accepted too).
    #[derive(Serialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = SledId))]
    pub(super) struct ShortId<'a> {
        /// The baseboard part number.
        part: &'a str,
        /// The baseboard serial number.
        serial: &'a str,
    }

    pub(super) fn serialize<S: Serializer>(
        set: &BTreeSet<BaseboardId>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(set.len()))?;
        for id in set {
            seq.serialize_element(&ShortId { part: id.part_number(), serial: id.serial_number() })?;
        }
        seq.end()
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeSet<BaseboardId>, D::Error> {
        let list = Vec::<BaseboardId>::deserialize(d)?;
        let mut set = BTreeSet::new();
        for id in list {
            let printed = id.to_string();
            if !set.insert(id) {
                return Err(serde::de::Error::custom(format!("sled {printed} is listed twice")));
            }
        }
        Ok(set)
    }
}

/// Serde helper for maps keyed by [`BaseboardId`], written as `PART:SERIAL`
/// strings in every format (JSON object keys must be strings). Use it with
/// `#[serde(with = "tq_types::membership::serde_member_map")]`.
pub mod serde_member_map {
    use super::*;

    /// Serializes the map with `PART:SERIAL` keys.
    pub fn serialize<S, V>(map: &BTreeMap<BaseboardId, V>, s: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        V: Serialize,
    {
        member_map::serialize(map, s)
    }

    /// Deserializes a map with `PART:SERIAL` keys, rejecting duplicates.
    pub fn deserialize<'de, D, V>(d: D) -> Result<BTreeMap<BaseboardId, V>, D::Error>
    where
        D: Deserializer<'de>,
        V: Deserialize<'de>,
    {
        member_map::deserialize(d)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn timestamp_prints_six_digits_and_z() {
        let t = Timestamp::parse_rfc3339("2026-01-14T21:33:03.864617Z").unwrap();
        assert_eq!(t.to_string(), "2026-01-14T21:33:03.864617Z");
        let whole = Timestamp::parse_rfc3339("2026-01-14T21:33:03Z").unwrap();
        assert_eq!(whole.to_string(), "2026-01-14T21:33:03.000000Z");
        let offset = Timestamp::parse_rfc3339("2026-01-14T23:33:03.1+02:00").unwrap();
        assert_eq!(offset.to_string(), "2026-01-14T21:33:03.100000Z");
        let nanos = Timestamp::parse_rfc3339("2026-01-14T21:33:03.123456789Z").unwrap();
        assert_eq!(nanos.to_string(), "2026-01-14T21:33:03.123456Z");
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"2026-01-14T21:33:03.864617Z\"");
        assert_eq!(
            serde_json::from_str::<Timestamp>("\"2026-01-14T21:33:03.864617Z\"").unwrap(),
            t
        );
        assert!(Timestamp::parse_rfc3339("yesterday").is_err());
    }

    #[test]
    fn timestamp_range_and_arithmetic() {
        assert!(Timestamp::from_unix_micros(i64::MAX).is_none());
        assert!(Timestamp::from_unix_micros(i64::MIN).is_none());
        let min = Timestamp::from_unix_micros(Timestamp::MIN_MICROS).unwrap();
        assert_eq!(min.to_string(), "0000-01-01T00:00:00.000000Z");
        let max = Timestamp::from_unix_micros(Timestamp::MAX_MICROS).unwrap();
        assert_eq!(max.to_string(), "9999-12-31T23:59:59.999999Z");
        assert_eq!(max.to_string().parse::<Timestamp>().unwrap(), max);
        assert!(max.checked_add(Duration::from_micros(1)).is_none());
        let t = Timestamp::from_unix_micros(1_000_000).unwrap();
        let later = t.checked_add(Duration::from_millis(1500)).unwrap();
        assert_eq!(later.unix_micros(), 2_500_000);
        assert_eq!(later.saturating_duration_since(t), Duration::from_millis(1500));
        assert_eq!(t.saturating_duration_since(later), Duration::ZERO);
    }

    #[test]
    fn timestamp_round_trips_any_micros() {
        for micros in [0, 1, -1, 1_768_426_383_864_617, Timestamp::MIN_MICROS, 999_999] {
            let t = Timestamp::from_unix_micros(micros).unwrap();
            assert_eq!(t.to_string().parse::<Timestamp>().unwrap(), t);
            assert_eq!(t.unix_micros(), micros);
        }
    }

    #[test]
    fn add_sleds_request_rejects_duplicates() {
        let dup = r#"{"sled_ids":[{"part":"P","serial":"1"},{"part":"P","serial":"1"}]}"#;
        assert!(serde_json::from_str::<AddSledsRequest>(dup).is_err());
        let long = r#"{"sled_ids":[{"part_number":"P","serial_number":"1"}]}"#;
        let req: AddSledsRequest = serde_json::from_str(long).unwrap();
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"sled_ids":[{"part":"P","serial":"1"}]}"#
        );
    }

    #[test]
    fn state_spellings() {
        assert_eq!(
            serde_json::to_string(&ConfigState::CommittedPartially).unwrap(),
            "\"committed_partially\""
        );
        assert_eq!(
            serde_json::to_string(&RackMembershipState::InProgress).unwrap(),
            "\"in_progress\""
        );
        assert_eq!(serde_json::to_string(&MemberState::Unacked).unwrap(), "\"unacked\"");
        assert_eq!(ConfigState::CommittedPartially.to_string(), "committed_partially");
    }
}
