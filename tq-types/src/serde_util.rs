//! Serde helpers shared by the data types: lowercase hex for bytes in
//! human-readable formats, raw bytes in binary ones, and member maps keyed
//! `PART:SERIAL`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serializer};

use crate::ids::BaseboardId;

/// Bytes as lowercase hex (human-readable) or a byte string (binary).
pub(crate) mod hex_bytes {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(bytes))
        } else {
            s.serialize_bytes(bytes)
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        if d.is_human_readable() {
            let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
            hex::decode(s.as_ref()).map_err(de::Error::custom)
        } else {
            d.deserialize_byte_buf(BytesVisitor)
        }
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
            Ok(v)
        }
    }
}

/// A fixed 32-byte array, as [`hex_bytes`] with a length check.
pub(crate) mod hex_array32 {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        hex_bytes::serialize(bytes, s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let v = hex_bytes::deserialize(d)?;
        let len = v.len();
        <[u8; 32]>::try_from(v).map_err(|_| de::Error::invalid_length(len, &"exactly 32 bytes"))
    }
}

/// A fixed 64-byte array, as [`hex_bytes`] with a length check.
pub(crate) mod hex_array64 {
    use super::*;

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8; 64], s: S) -> Result<S::Ok, S::Error> {
        hex_bytes::serialize(bytes, s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 64], D::Error> {
        let v = hex_bytes::deserialize(d)?;
        let len = v.len();
        <[u8; 64]>::try_from(v).map_err(|_| de::Error::invalid_length(len, &"exactly 64 bytes"))
    }
}

/// A map from members to values, keyed by the `PART:SERIAL` string form of
/// the member's identity in every format. Duplicate keys are rejected.
pub(crate) mod member_map {
    use super::*;

    pub(crate) fn serialize<S, V>(map: &BTreeMap<BaseboardId, V>, s: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        V: serde::Serialize,
    {
        let mut m = s.serialize_map(Some(map.len()))?;
        for (k, v) in map {
            m.serialize_entry(&k.to_string(), v)?;
        }
        m.end()
    }

    pub(crate) fn deserialize<'de, D, V>(d: D) -> Result<BTreeMap<BaseboardId, V>, D::Error>
    where
        D: Deserializer<'de>,
        V: Deserialize<'de>,
    {
        d.deserialize_map(MemberMapVisitor(std::marker::PhantomData))
    }

    struct MemberMapVisitor<V>(std::marker::PhantomData<V>);

    impl<'de, V: Deserialize<'de>> Visitor<'de> for MemberMapVisitor<V> {
        type Value = BTreeMap<BaseboardId, V>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a map keyed by PART:SERIAL")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut map = BTreeMap::new();
            while let Some(key) = access.next_key::<std::borrow::Cow<'de, str>>()? {
                let id: BaseboardId = key.parse().map_err(de::Error::custom)?;
                let value = access.next_value()?;
                if map.insert(id, value).is_some() {
                    return Err(de::Error::custom(format!("duplicate member {key}")));
                }
            }
            Ok(map)
        }
    }
}
