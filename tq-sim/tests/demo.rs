//! The fixture story driven through the real `ControlPlane` and real
//! `Node`s (3 sleds at epoch 1, add the fourth): the JSON at each stage has
//! the fixtures' keys, nesting, value types and enum spellings, and the
//! report has the fixture's layout.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    missing_docs
)]

use serde_json::Value;

fn fixture(name: &str) -> String {
    let path = format!("{}/../fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap()
}

/// Same keys and nesting everywhere, same types where both are non-null.
/// Member maps (keys `PART:SERIAL`) compare each entry with the fixture's
/// first entry.
fn same_shape(path: &str, ours: &Value, theirs: &Value) {
    match (ours, theirs) {
        (Value::Null, _) | (_, Value::Null) => {}
        (Value::Object(a), Value::Object(b)) => {
            let member_map = b.keys().all(|k| k.contains(':')) && !b.is_empty();
            if member_map {
                assert!(a.keys().all(|k| k.contains(':')), "{path}: member keys");
                let proto = b.values().next().unwrap();
                for (k, v) in a {
                    same_shape(&format!("{path}.{k}"), v, proto);
                }
            } else {
                let ka: Vec<&String> = a.keys().collect();
                let kb: Vec<&String> = b.keys().collect();
                assert_eq!(ka, kb, "{path}: keys differ");
                for (k, v) in a {
                    same_shape(&format!("{path}.{k}"), v, &b[k]);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            if let Some(proto) = b.first() {
                for (i, v) in a.iter().enumerate() {
                    same_shape(&format!("{path}[{i}]"), v, proto);
                }
            }
        }
        (Value::String(a), Value::String(b)) => {
            // Timestamps stay timestamps, hex stays hex of the same length.
            let ts = |s: &str| s.len() == 27 && s.ends_with('Z') && s.as_bytes()[10] == b'T';
            assert_eq!(ts(a), ts(b), "{path}: {a:?} vs {b:?}");
            if ts(b) {
                assert_eq!(a.len(), b.len(), "{path}: timestamp precision");
            }
        }
        (Value::Number(_), Value::Number(_)) | (Value::Bool(_), Value::Bool(_)) => {}
        _ => panic!("{path}: {ours} is not shaped like {theirs}"),
    }
}

#[test]
fn demo_stages_have_the_fixture_shapes() {
    let demo = tq_sim::demo::run_demo().unwrap();
    let json = demo.to_json();
    let stages = json["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 3);
    let fixtures = [
        "config-epoch2-preparing-unacked.json",
        "config-epoch2-preparing-prepared.json",
        "config-epoch2-committed.json",
    ];
    for (stage, name) in stages.iter().zip(fixtures) {
        same_shape(name, stage, &fixture_json(name));
        // The sealed secrets keep the committed fixture's shape too.
        same_shape(name, stage, &fixture_json("config-epoch2-committed.json"));
    }
    // Stage by stage, the story the fixtures tell.
    assert_eq!(stages[0]["state"], "preparing");
    assert!(stages[0]["members"].as_object().unwrap().values().all(|m| m["state"] == "unacked"));
    assert!(stages[1]["members"].as_object().unwrap().values().any(|m| m["state"] == "prepared"));
    assert_eq!(stages[2]["state"], "committed");
    assert!(stages[2]["members"].as_object().unwrap().values().all(|m| m["state"] == "committed"));
    assert_eq!(stages[2]["threshold"], 3);
    assert_eq!(stages[2]["commit_crash_tolerance"], 1);
    let data = stages[2]["encrypted_rack_secrets"]["data"].as_str().unwrap();
    assert_eq!(data.len(), 2 * 56, "one sealed epoch: 40 bytes plus the 16-byte tag");
    assert_eq!(stages[2]["members"].as_object().unwrap().len(), 4);

    same_shape("status", &json["status"], &fixture_json("membership-status-epoch2-committed.json"));
    assert_eq!(json["status"]["state"], "committed");
    assert_eq!(json["status"]["epoch"], 2);
    assert_eq!(json["status"]["unacknowledged_members"], serde_json::json!([]));
}

#[test]
fn demo_report_has_the_fixture_layout() {
    let demo = tq_sim::demo::run_demo().unwrap();
    let shape = |text: &str| -> Vec<String> {
        text.lines()
            .map(|l| {
                let indent = l.len() - l.trim_start().len();
                let head = l.trim_start().split(':').next().unwrap_or("");
                let head = if head.starts_with("Trust Quorum") {
                    "Trust Quorum status for rack_id"
                } else if head.starts_with("Commit Status from client") {
                    "Commit Status from client"
                } else {
                    head
                };
                format!("{indent}:{head}")
            })
            .collect()
    };
    let ours = shape(&demo.report);
    let theirs = shape(&fixture("manager-status-epoch2.txt"));
    assert_eq!(ours[0], theirs[0]);
    // Each client block: a header and the acked/pending/errors lines.
    assert_eq!(ours.len() % 4, 1);
    for block in ours[1..].chunks(4) {
        assert_eq!(block, &theirs[1..5]);
    }
}

#[test]
fn demo_is_deterministic() {
    let a = tq_sim::demo::run_demo().unwrap().to_json();
    let b = tq_sim::demo::run_demo().unwrap().to_json();
    assert_eq!(a, b);
}
