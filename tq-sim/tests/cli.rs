//! The `tq-sim` command-line contract (docs/architecture.md section 6).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

use std::process::Command;

fn tq_sim(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tq-sim")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn run_prints_the_summary_line() {
    let (code, stdout, _) = tq_sim(&["run", "--seed", "3", "--steps", "300"]);
    assert_eq!(code, 0);
    let line = stdout.lines().last().unwrap();
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields[0], "summary:");
    let keys: Vec<&str> = fields[1..].iter().map(|f| f.split('=').next().unwrap()).collect();
    assert_eq!(keys, ["seeds", "events", "violations", "liveness", "digest", "elapsed_ms"]);
    assert!(
        line.contains("seeds=1 ")
            && line.contains("violations=0 ")
            && line.contains("liveness=ok ")
    );
    let digest = fields[5].strip_prefix("digest=").unwrap();
    assert_eq!(digest.len(), 16);
    assert!(digest.chars().all(|c| c.is_ascii_hexdigit()));
    // The drawn policy, just before the summary, as SimPolicy prints it.
    let policy = stdout.lines().rev().nth(1).unwrap();
    let expected = tq_sim::SimOptions::new(3).policy_in_force();
    assert_eq!(policy, format!("policy: {expected}"));
}

#[test]
fn run_json_has_the_same_keys_and_checks_determinism() {
    let (code, stdout, stderr) =
        tq_sim(&["run", "--seed", "4", "--steps", "300", "--json", "--check-determinism"]);
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    for key in ["seeds", "events", "violations", "liveness", "digest", "elapsed_ms"] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["liveness"], "ok");
    let expected = tq_sim::SimOptions::new(4).policy_in_force();
    assert_eq!(v["policy"], expected.to_string());
}

#[test]
fn explore_sums_seeds() {
    let (code, stdout, _) = tq_sim(&[
        "explore", "--seeds", "0..4", "--steps", "200", "--faults", "heavy", "--jobs", "2",
    ]);
    assert_eq!(code, 0);
    assert!(stdout.contains("summary: seeds=4 "), "{stdout}");
}

#[test]
fn explore_byzantine_prints_the_coverage_line_with_injections() {
    let (code, stdout, stderr) = tq_sim(&[
        "explore",
        "--seeds",
        "0..2",
        "--steps",
        "300",
        "--faults",
        "byzantine",
        "--jobs",
        "2",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let coverage = stdout.lines().find(|l| l.starts_with("coverage: ")).unwrap();
    let keys: Vec<&str> =
        coverage.split(' ').skip(1).map(|f| f.split('=').next().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "wipes",
            "aborts",
            "expunges",
            "corrupted_shares",
            "races_lost",
            "epoch3_runs",
            "not_available",
            "replays",
            "forged_prepares",
            "forged_commit_advances",
            "forged_expunged",
            "get_shares",
            "mutated_shares",
            "flooded",
            "corrupted_disks",
            "corruptions_detected",
            "exemptions",
            "max_exemptions",
        ]
    );
    assert!(stdout.contains("summary: seeds=2 "), "{stdout}");
}

#[test]
fn a_byzantine_log_replays() {
    let dir = std::env::temp_dir().join(format!("tq-sim-cli-byz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("byz.jsonl");
    let log = log.to_str().unwrap();
    let args = ["run", "--seed", "2", "--steps", "600", "--faults", "byzantine", "--log", log];
    let (code, _, stderr) = tq_sim(&args);
    assert_eq!(code, 0, "{stderr}");
    let text = std::fs::read_to_string(log).unwrap();
    assert!(text.contains(r#""event":"attack""#), "no attack logged");
    let (code, stdout, _) = tq_sim(&["replay", log]);
    assert_eq!(code, 0);
    assert!(stdout.contains("every digest matches"), "{stdout}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_usage_exits_2() {
    for args in [
        &["run"][..],
        &["run", "--seed", "x"],
        &["run", "--seed", "1", "--faults", "wild"],
        &["explore", "--seeds", "5..1"],
        &["explore", "--seeds", "nope"],
        &["run", "--seed", "1", "--nodes", "2"],
        &["frobnicate"],
    ] {
        let (code, _, stderr) = tq_sim(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(!stderr.is_empty());
    }
}

#[test]
fn replay_of_a_saved_log_matches_and_shows_state() {
    let dir = std::env::temp_dir().join(format!("tq-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("run.jsonl");
    let log = log.to_str().unwrap();
    let (code, _, _) = tq_sim(&["run", "--seed", "2", "--steps", "400", "--log", log]);
    assert_eq!(code, 0);
    let (code, stdout, _) = tq_sim(&["replay", log]);
    assert_eq!(code, 0);
    assert!(stdout.contains("every digest matches"), "{stdout}");
    let (code, stdout, _) = tq_sim(&[
        "replay",
        log,
        "--until",
        "50",
        "--show",
        "node:PPP-PPPPPPP:00000000000",
        "--json",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert!(v.get("durable").is_some());
    let (code, _, _) = tq_sim(&["replay", log, "--show", "control"]);
    assert_eq!(code, 0);
    let (code, _, stderr) = tq_sim(&["replay", log, "--reveal-secrets"]);
    assert_eq!(code, 2, "--reveal-secrets without --show: {stderr}");
    let (code, _, _) = tq_sim(&["replay", log, "--show", "bogus"]);
    assert_eq!(code, 2);
    let (code, _, _) = tq_sim(&["replay", "/nonexistent/log.jsonl"]);
    assert_eq!(code, 2);
    std::fs::remove_dir_all(&dir).ok();
}

/// The `--show` JSON of `what` at `step` of `log`, with `extra` flags.
fn show(log: &str, step: &str, what: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["replay", log, "--until", step, "--show", what, "--json"];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = tq_sim(&args);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(stdout.lines().next().unwrap()).unwrap()
}

#[test]
fn shares_are_shown_as_digests_unless_revealed() {
    let dir = std::env::temp_dir().join(format!("tq-sim-reveal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("run.jsonl");
    let log = log.to_str().unwrap();
    let (code, _, _) = tq_sim(&["run", "--seed", "2", "--steps", "400", "--log", log]);
    assert_eq!(code, 0);
    let node = "node:PPP-PPPPPPP:00000000000";

    // By default each share is its digest, the one its configuration lists.
    let default = show(log, "200", node, &[]);
    let me = "PPP-PPPPPPP:00000000000";
    let shares = default["durable"]["shares"].as_object().unwrap();
    assert!(!shares.is_empty(), "seed 2 gives sled 0 a share by step 200");
    for (epoch, share) in shares {
        let digest = share["digest"].as_str().unwrap();
        let config = &default["durable"]["configs"][epoch.as_str()];
        assert_eq!(config["members"][me].as_str(), Some(digest), "epoch {epoch}");
        assert!(share.get("bytes").is_none());
    }

    // With --reveal-secrets the same views hold the raw bytes; without it no
    // share's bytes appear anywhere in them.
    for (step, what) in [("100", node), ("200", node), ("100", "network")] {
        let mut secrets = Vec::new();
        collect_bytes(&show(log, step, what, &["--reveal-secrets"]), &mut secrets);
        assert!(!secrets.is_empty(), "{what} at {step} holds shares in seed 2");
        let text = show(log, step, what, &[]).to_string();
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{what} at {step} shows a share");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Every share's raw bytes (`{"bytes": HEX}`) in a revealed view.
fn collect_bytes(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(map) => {
            if let Some(hex) = map.get("bytes").and_then(|b| b.as_str()) {
                out.push(hex.to_string());
            }
            map.values().for_each(|x| collect_bytes(x, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|x| collect_bytes(x, out)),
        _ => {}
    }
}
