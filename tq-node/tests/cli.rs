//! The `tq-node` command: `keys init` makes a rack whose configurations load
//! and whose certificates name their sleds; bad usage exits 2.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, missing_docs)]

use std::process::Command;

use tq_node::config::AgentConfig;

fn tq_node(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tq-node")).args(args).output().unwrap()
}

#[test]
fn keys_init_makes_loadable_configurations() {
    let dir = tempfile::tempdir().unwrap();
    let rack = dir.path().join("rack");
    let out = tq_node(&[
        "keys",
        "init",
        "--dir",
        rack.to_str().unwrap(),
        "--sleds",
        "3",
        "--base-port",
        "17000",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for i in 0..3 {
        let config = AgentConfig::load(&rack.join(format!("sled-{i}.toml"))).unwrap();
        assert_eq!(config.id.to_string(), format!("PPP-PPPPPPP:{i:011}"));
        assert_eq!(config.peers.len(), 2);
        assert!(config.peer_listen.ip().is_loopback());
        assert_eq!(config.peer_listen.port(), 17000 + i);
        let identity =
            tq_node::tls::Identity::load(&config.tls.ca, &config.tls.cert, &config.tls.key)
                .unwrap();
        assert_eq!(identity.sled_id(), Some(&config.id));
    }
    // Running it twice never overwrites a key.
    let again = tq_node(&["keys", "init", "--dir", rack.to_str().unwrap(), "--sleds", "3"]);
    assert!(!again.status.success());
}

#[test]
fn bad_usage_exits_2() {
    assert_eq!(tq_node(&[]).status.code(), Some(2));
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "id = \"not an id\"\n").unwrap();
    assert_eq!(tq_node(&["--config", bad.to_str().unwrap()]).status.code(), Some(2));
}
