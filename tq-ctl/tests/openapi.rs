//! The operator API's OpenAPI document against the code.
//!
//! - The document `tq_ctl::openapi::openapi()` renders must equal the
//!   checked-in `tq-ctl/openapi.json` byte for byte. After a deliberate
//!   change to the API, regenerate the file with
//!   `TQ_UPDATE_OPENAPI=1 cargo test -p tq-ctl --test openapi` (the variable
//!   makes the test write the file instead of comparing) and commit it.
//! - The routes the router serves (`tq_ctl::api::routes`) and the operations
//!   the document describes must be the same.
//! - The JSON the API carries must fit the document's schemas: the fixtures
//!   (the membership status, the configuration views, the add-sleds body)
//!   and every refusal (`ErrorBody` around each variant of `OpError` and of
//!   the protocol errors it wraps), checked by a small JSON Schema checker
//!   that rejects properties a schema does not list.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
#![allow(clippy::arithmetic_side_effects, missing_docs)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::{Value, json};

/// Set (to anything) to rewrite `openapi.json` instead of comparing.
const UPDATE: &str = "TQ_UPDATE_OPENAPI";
const REGENERATE: &str =
    "run `TQ_UPDATE_OPENAPI=1 cargo test -p tq-ctl --test openapi` to regenerate";

fn checked_in() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi.json")
}

/// The document as it is checked in: pretty JSON and a trailing newline.
fn rendered() -> String {
    let mut text = tq_ctl::openapi::openapi().to_pretty_json().unwrap();
    text.push('\n');
    text
}

fn document() -> Value {
    serde_json::from_str(&rendered()).unwrap()
}

#[test]
fn document_matches_the_checked_in_file() {
    let path = checked_in();
    let text = rendered();
    if std::env::var_os(UPDATE).is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_default();
    if stored == text {
        return;
    }
    let line = stored.lines().zip(text.lines()).position(|(a, b)| a != b);
    let line = line.unwrap_or_else(|| stored.lines().count().min(text.lines().count()));
    panic!(
        "{} is out of date with the code: it first differs at line {}\n  file: {:?}\n  code: {:?}\n{REGENERATE}",
        path.display(),
        line + 1,
        stored.lines().nth(line).unwrap_or("<end of file>"),
        text.lines().nth(line).unwrap_or("<end of document>"),
    );
}

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

#[test]
fn router_and_document_have_the_same_routes() {
    let served: Vec<(String, String)> =
        tq_ctl::api::routes().map(|(m, p)| (m.to_owned(), p.to_owned())).collect();
    let served_set: BTreeSet<(String, String)> = served.iter().cloned().collect();
    assert_eq!(served.len(), served_set.len(), "a route is listed twice: {served:?}");
    let doc = document();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if METHODS.contains(&method.as_str()) {
                documented.insert((method.clone(), path.clone()));
            }
        }
    }
    let undocumented: Vec<_> = served_set.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served_set).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "served but not documented: {undocumented:?}; documented but not served: {unserved:?}"
    );
}

/// Checks `value` against `schema` (a schema of the OpenAPI 3.1 document
/// `doc`), for the keywords the document uses. An object may have only the
/// properties its schema lists, unless `additionalProperties` allows more.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.strip_prefix("#/components/schemas/").ok_or(reference)?;
        let target = &doc["components"]["schemas"][name];
        if target.is_null() {
            return Err(format!("{at}: dangling {reference}"));
        }
        check(doc, target, value, at)?;
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            check(doc, s, value, at)?;
        }
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let fits: Vec<_> = one.iter().filter(|s| check(doc, s, value, at).is_ok()).collect();
        if fits.len() != 1 {
            return Err(format!("{at}: {value} fits {} of the oneOf schemas", fits.len()));
        }
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array) {
        if !any.iter().any(|s| check(doc, s, value, at).is_ok()) {
            return Err(format!("{at}: {value} fits none of the anyOf schemas"));
        }
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            other => other.as_str().into_iter().collect(),
        };
        let fits = |t: &str| match t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => false,
        };
        if !types.iter().any(|t| fits(t)) {
            return Err(format!("{at}: {value} is not of type {types:?}"));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            return Err(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Value::as_f64), value.as_f64()) {
        if n < min {
            return Err(format!("{at}: {n} is below the minimum {min}"));
        }
    }
    if let (Some(min), Some(s)) = (schema.get("minLength").and_then(Value::as_u64), value.as_str())
    {
        if (s.chars().count() as u64) < min {
            return Err(format!("{at}: {s:?} is shorter than {min}"));
        }
    }
    if let Some(s) = value.as_str() {
        let format = schema.get("format").and_then(Value::as_str);
        if format == Some("uuid") && s.parse::<uuid::Uuid>().is_err() {
            return Err(format!("{at}: {s:?} is not a uuid"));
        }
        if format == Some("date-time") && tq_types::Timestamp::parse_rfc3339(s).is_err() {
            return Err(format!("{at}: {s:?} is not a date-time"));
        }
    }
    if let Some(items) = value.as_array() {
        if let Some(item) = schema.get("items") {
            for (i, v) in items.iter().enumerate() {
                check(doc, item, v, &format!("{at}[{i}]"))?;
            }
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let name = name.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                return Err(format!("{at}: required property {name:?} is missing"));
            }
        }
        let extra = schema.get("additionalProperties");
        for (name, v) in object {
            let path = format!("{at}.{name}");
            match (properties.and_then(|p| p.get(name)), extra) {
                (Some(s), _) => check(doc, s, v, &path)?,
                (None, Some(Value::Bool(true))) => {}
                (None, Some(s @ Value::Object(_))) => check(doc, s, v, &path)?,
                // Only a schema that describes an object may refuse a
                // property: `{"$ref": ...}` and the like say nothing here.
                (None, _) if properties.is_some() || extra.is_some() => {
                    return Err(format!("{at}: property {name:?} is not in the schema"));
                }
                (None, _) => {}
            }
        }
    }
    Ok(())
}

/// Checks `value` against the named component schema.
fn fits(doc: &Value, name: &str, value: &Value) -> Result<(), String> {
    let reference = json!({ "$ref": format!("#/components/schemas/{name}") });
    check(doc, &reference, value, name)
}

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn fixtures_fit_the_schemas() {
    let doc = document();
    let status = fixture("membership-status-epoch2-committed.json");
    fits(&doc, "RackMembershipStatus", &status).unwrap();
    for name in [
        "config-epoch2-committed.json",
        "config-epoch2-preparing-prepared.json",
        "config-epoch2-preparing-unacked.json",
    ] {
        fits(&doc, "TrustQuorumConfig", &fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    fits(&doc, "AddSledsRequest", &fixture("add-sleds-request.json")).unwrap();
    // What the types serialize fits too (the fixtures round-trip through them).
    let typed: tq_types::RackMembershipStatus = serde_json::from_value(status.clone()).unwrap();
    fits(&doc, "RackMembershipStatus", &serde_json::to_value(typed).unwrap()).unwrap();

    // And the checker is not blind: a wrong state, a stray or missing key fail.
    let mut bad = status.clone();
    bad["state"] = json!("finished");
    assert!(fits(&doc, "RackMembershipStatus", &bad).is_err());
    let mut bad = status.clone();
    bad["extra"] = json!(1);
    assert!(fits(&doc, "RackMembershipStatus", &bad).is_err());
    let mut bad = status;
    bad.as_object_mut().unwrap().remove("epoch");
    assert!(fits(&doc, "RackMembershipStatus", &bad).is_err());
}

mod refusals {
    use std::collections::BTreeSet;

    use tq_ctl::errors::OpError;
    use tq_types::{BaseboardId, ConfigState, Epoch, RackId};
    use trust_quorum::control::{
        AbortError, AddSledsError, ChangeRefused, InitializeError, RemoveSledsError,
    };

    fn rack() -> RackId {
        RackId("3df0b7cd-50ed-498e-afa4-41f178d393f9".parse().unwrap())
    }

    fn sleds() -> BTreeSet<BaseboardId> {
        ["PPP-PPPPPPP:00000000000", "PPP-PPPPPPP:00000000001"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect()
    }

    // Each list holds every variant: the `match` stops compiling when one is
    // added, so that the new variant gets an example (and a schema).

    fn initialize() -> Vec<InitializeError> {
        use InitializeError::*;
        let all = vec![
            AlreadyInitialized { rack_id: rack(), epoch: Epoch(1), state: ConfigState::Committed },
            RackIdMismatch { ledger: rack(), requested: RackId(uuid::Uuid::nil()) },
            InProgress { epoch: Epoch(1) },
            MembershipSize { members: 2, min: 3, max: 32 },
            NoCoordinatorCandidate,
            EpochExhausted,
        ];
        for e in &all {
            match e {
                AlreadyInitialized { .. } | RackIdMismatch { .. } | InProgress { .. } => {}
                MembershipSize { .. } | NoCoordinatorCandidate | EpochExhausted => {}
            }
        }
        all
    }

    fn refused() -> Vec<ChangeRefused> {
        use ChangeRefused::*;
        let all = vec![
            NotInitialized,
            InProgress { epoch: Epoch(2) },
            MembershipSize { members: 33, min: 3, max: 32 },
            PreviousNotCommitted { epoch: Epoch(2), committed: 2, needed: 4 },
            NoCoordinatorCandidate { last_committed: Some(Epoch(1)) },
            NoCoordinatorCandidate { last_committed: None },
            EpochExhausted,
        ];
        for e in &all {
            match e {
                NotInitialized | InProgress { .. } | MembershipSize { .. } => {}
                PreviousNotCommitted { .. } | NoCoordinatorCandidate { .. } | EpochExhausted => {}
            }
        }
        all
    }

    fn add() -> Vec<AddSledsError> {
        let mut all =
            vec![AddSledsError::NoSleds, AddSledsError::AlreadyMembers { sleds: sleds() }];
        all.extend(refused().into_iter().map(AddSledsError::Refused));
        for e in &all {
            match e {
                AddSledsError::NoSleds
                | AddSledsError::AlreadyMembers { .. }
                | AddSledsError::Refused(_) => {}
            }
        }
        all
    }

    fn remove() -> Vec<RemoveSledsError> {
        let mut all =
            vec![RemoveSledsError::NoSleds, RemoveSledsError::NotMembers { sleds: sleds() }];
        all.extend(refused().into_iter().map(RemoveSledsError::Refused));
        for e in &all {
            match e {
                RemoveSledsError::NoSleds
                | RemoveSledsError::NotMembers { .. }
                | RemoveSledsError::Refused(_) => {}
            }
        }
        all
    }

    fn abort() -> Vec<AbortError> {
        let all = vec![
            AbortError::NoConfiguration,
            AbortError::NotPreparing { epoch: Epoch(3), state: ConfigState::Committing },
        ];
        for e in &all {
            match e {
                AbortError::NoConfiguration | AbortError::NotPreparing { .. } => {}
            }
        }
        all
    }

    /// One example of every refusal the API can answer.
    pub(super) fn all() -> Vec<OpError> {
        let mut all: Vec<OpError> = Vec::new();
        all.extend(initialize().into_iter().map(OpError::Initialize));
        all.extend(add().into_iter().map(OpError::Add));
        all.extend(remove().into_iter().map(OpError::Remove));
        all.extend(abort().into_iter().map(OpError::Abort));
        all.extend([
            OpError::UnknownSleds { sleds: sleds() },
            OpError::WrongRack { managed: rack(), requested: "not-a-rack".to_owned() },
            OpError::NoSuchEpoch(7),
            OpError::BadRequest("Failed to parse the request body as JSON".to_owned()),
            OpError::Store("database is locked".to_owned()),
            OpError::Busy,
            OpError::Unavailable,
        ]);
        for e in &all {
            match e {
                OpError::Initialize(_)
                | OpError::Add(_)
                | OpError::Remove(_)
                | OpError::Abort(_) => {}
                OpError::UnknownSleds { .. }
                | OpError::WrongRack { .. }
                | OpError::NoSuchEpoch(_) => {}
                OpError::BadRequest(_)
                | OpError::Store(_)
                | OpError::Busy
                | OpError::Unavailable => {}
            }
        }
        all
    }
}

#[test]
fn every_refusal_fits_the_error_body_schema() {
    let doc = document();
    for error in refusals::all() {
        // As `api::refuse` writes it.
        let body = json!({ "error": &error, "message": error.to_string() });
        fits(&doc, "ErrorBody", &body).unwrap_or_else(|e| panic!("{error:?}: {e}"));
        assert!(error.status().is_client_error() || error.status().as_u16() == 503, "{error:?}");
    }
    for wrong in [
        json!({ "error": "bogus", "message": "" }),
        json!({ "error": { "abort": "no_sleds" }, "message": "" }),
        json!({ "error": { "no_such_epoch": "seven" }, "message": "" }),
        json!({ "error": "busy" }),
    ] {
        assert!(fits(&doc, "ErrorBody", &wrong).is_err(), "{wrong}");
    }
}
