//! Identities and counters: sleds, racks, epochs and thresholds.

use core::fmt;
use core::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};

/// The identity of a sled: its baseboard part and serial numbers.
///
/// Identities are totally ordered, part number first, then serial number,
/// byte-wise. The order is protocol-significant: the i-th member of a
/// configuration (0-based, in this order) holds the share at x-coordinate
/// `i + 1`.
///
/// It prints, and parses, as `PART:SERIAL`. In JSON it is an object with the
/// keys `part_number` and `serial_number`; input also accepts the short keys
/// `part` and `serial` of the add-sleds request. A part number may not contain
/// `:` and neither field may be empty, so the printed form always parses back.
///
/// Cloning is cheap (two reference-count increments): identities are copied
/// into every configuration, message and map the protocol builds.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(description = "The identity of a sled: its baseboard part and serial numbers \
        (input also accepts the short keys `part` and `serial`). It prints as `PART:SERIAL`; \
        the part number contains no `:`.")
)]
#[serde(try_from = "BaseboardIdRepr")]
pub struct BaseboardId {
    #[cfg_attr(feature = "openapi", schema(value_type = String, min_length = 1))]
    part_number: Arc<str>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, min_length = 1))]
    serial_number: Arc<str>,
}

impl Serialize for BaseboardId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Repr<'a> {
            part_number: &'a str,
            serial_number: &'a str,
        }
        Repr { part_number: &self.part_number, serial_number: &self.serial_number }
            .serialize(serializer)
    }
}

#[derive(Deserialize)]
struct BaseboardIdRepr {
    #[serde(alias = "part")]
    part_number: String,
    #[serde(alias = "serial")]
    serial_number: String,
}

impl TryFrom<BaseboardIdRepr> for BaseboardId {
    type Error = BaseboardIdError;

    fn try_from(repr: BaseboardIdRepr) -> Result<Self, Self::Error> {
        BaseboardId::new(repr.part_number, repr.serial_number)
    }
}

/// Why a string or pair of strings is not a valid [`BaseboardId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BaseboardIdError {
    /// The part number or the serial number is empty.
    #[error("baseboard part and serial numbers must not be empty")]
    Empty,
    /// The part number contains `:`, which separates part and serial.
    #[error("baseboard part number must not contain ':'")]
    ColonInPart,
    /// The text has no `:` between part and serial.
    #[error("baseboard id must have the form PART:SERIAL")]
    MissingSeparator,
}

impl BaseboardId {
    /// Builds an identity, rejecting empty fields and a `:` in the part number.
    pub fn new(
        part_number: impl Into<Arc<str>>,
        serial_number: impl Into<Arc<str>>,
    ) -> Result<Self, BaseboardIdError> {
        let part_number = part_number.into();
        let serial_number = serial_number.into();
        if part_number.is_empty() || serial_number.is_empty() {
            return Err(BaseboardIdError::Empty);
        }
        if part_number.contains(':') {
            return Err(BaseboardIdError::ColonInPart);
        }
        Ok(Self { part_number, serial_number })
    }

    /// The baseboard part number.
    pub fn part_number(&self) -> &str {
        &self.part_number
    }

    /// The baseboard serial number.
    pub fn serial_number(&self) -> &str {
        &self.serial_number
    }
}

impl fmt::Display for BaseboardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.part_number, self.serial_number)
    }
}

impl fmt::Debug for BaseboardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for BaseboardId {
    type Err = BaseboardIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (part, serial) = s.split_once(':').ok_or(BaseboardIdError::MissingSeparator)?;
        Self::new(part, serial)
    }
}

/// The identity of a rack. A node's rack id is fixed for the lifetime of its
/// state.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(value_type = String, format = "uuid")
)]
#[serde(transparent)]
pub struct RackId(pub uuid::Uuid);

impl fmt::Display for RackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for RackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// A configuration attempt's number. The first is 1; the control plane
/// allocates epochs strictly sequentially, aborted attempts included.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct Epoch(pub u64);

impl Epoch {
    /// The first epoch of every rack.
    pub const INITIAL: Epoch = Epoch(1);

    /// The epoch after this one, or `None` at `u64::MAX`.
    pub fn next(self) -> Option<Epoch> {
        self.0.checked_add(1).map(Epoch)
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Epoch({})", self.0)
    }
}

/// The number of shares needed to rebuild a rack secret (K).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct Threshold(pub u8);

impl Threshold {
    /// The smallest threshold a node accepts.
    pub const MIN: Threshold = Threshold(2);
    /// The largest threshold a node accepts.
    pub const MAX: Threshold = Threshold(31);
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Threshold({})", self.0)
    }
}

/// The smallest membership a configuration may have.
pub const MIN_MEMBERS: usize = 3;
/// The largest membership a configuration may have.
pub const MAX_MEMBERS: usize = 32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let id = BaseboardId::new("PPP-PPPPPPP", "00000000002").unwrap();
        assert_eq!(id.to_string(), "PPP-PPPPPPP:00000000002");
        assert_eq!("PPP-PPPPPPP:00000000002".parse::<BaseboardId>().unwrap(), id);
        // A serial may contain ':'; only the first one separates.
        let odd: BaseboardId = "P:S:1".parse().unwrap();
        assert_eq!(odd.serial_number(), "S:1");
        assert_eq!(odd.to_string().parse::<BaseboardId>().unwrap(), odd);
    }

    #[test]
    fn rejects_bad_ids() {
        assert_eq!("nocolon".parse::<BaseboardId>(), Err(BaseboardIdError::MissingSeparator));
        assert_eq!(":S".parse::<BaseboardId>(), Err(BaseboardIdError::Empty));
        assert_eq!("P:".parse::<BaseboardId>(), Err(BaseboardIdError::Empty));
        assert_eq!(BaseboardId::new("a:b", "c"), Err(BaseboardIdError::ColonInPart));
    }

    #[test]
    fn json_accepts_long_and_short_keys() {
        let long: BaseboardId =
            serde_json::from_str(r#"{"part_number":"P","serial_number":"1"}"#).unwrap();
        let short: BaseboardId = serde_json::from_str(r#"{"part":"P","serial":"1"}"#).unwrap();
        assert_eq!(long, short);
        assert_eq!(
            serde_json::to_string(&long).unwrap(),
            r#"{"part_number":"P","serial_number":"1"}"#
        );
        assert!(serde_json::from_str::<BaseboardId>(r#"{"part":"","serial":"1"}"#).is_err());
    }

    #[test]
    fn order_is_part_then_serial() {
        let a = BaseboardId::new("A", "9").unwrap();
        let b = BaseboardId::new("B", "0").unwrap();
        let b1 = BaseboardId::new("B", "1").unwrap();
        assert!(a < b && b < b1);
    }
}
