//! Sled agents over real TLS sockets on 127.0.0.1 and real files in a
//! temporary folder, driven by a control plane over their control APIs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
#![allow(clippy::arithmetic_side_effects, missing_docs)]

mod agents_support;

use agents_support::{LocalRack, sled, sleds};
use tq_types::Epoch;

/// Every member of the latest committed epoch derives the same key, and a
/// different context gives a different one.
async fn same_key_everywhere(rack: &LocalRack, epoch: Epoch) -> String {
    let members: Vec<_> = rack.cp.config(epoch).unwrap().members.keys().cloned().collect();
    let mut keys = Vec::new();
    for m in &members {
        keys.push(rack.key(m, epoch, "disk-unlock:nvme0").await.unwrap());
    }
    assert!(keys.windows(2).all(|w| w[0] == w[1]), "{keys:?}");
    let other = rack.key(&members[0], epoch, "disk-unlock:nvme1").await.unwrap();
    assert_ne!(other, keys[0]);
    keys.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initialize_add_and_remove_commit_everywhere_with_one_key() {
    let mut rack = LocalRack::new(4);
    rack.start_all().await;
    let e1 = rack.initialize(sleds(0..3)).await;
    let k1 = same_key_everywhere(&rack, e1).await;

    let e2 = rack.cp.add_sleds(sleds([3]), agents_support::now(), &mut rack.rng).unwrap();
    rack.drive_until_committed(e2).await;
    let k2 = same_key_everywhere(&rack, e2).await;
    assert_ne!(k1, k2, "a new epoch has a new secret");
    // The new member can also derive epoch 1's key: the secret is sealed
    // into epoch 2's configuration.
    assert_eq!(rack.key(&sled(3), e1, "disk-unlock:nvme0").await.unwrap(), k1);

    let e3 = rack.cp.remove_sleds(sleds([0]), agents_support::now(), &mut rack.rng).unwrap();
    rack.drive_until_committed(e3).await;
    same_key_everywhere(&rack, e3).await;
    rack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_restarted_mid_change_still_commits() {
    let mut rack = LocalRack::new(4);
    rack.start_all().await;
    let e1 = rack.initialize(sleds(0..3)).await;
    let e2 = rack.cp.add_sleds(sleds([3]), agents_support::now(), &mut rack.rng).unwrap();
    // The coordinator is asked and polled once, then a member restarts from
    // its files before the change commits.
    rack.pass().await;
    rack.pass().await;
    let coordinator = rack.cp.config(e2).unwrap().coordinator;
    let victim = (0..4).map(sled).find(|s| *s != coordinator).unwrap();
    rack.stop(&victim).await;
    rack.start(&victim).await;
    rack.drive_until_committed(e2).await;
    same_key_everywhere(&rack, e2).await;
    let _ = e1;
    rack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_copy_is_repaired_and_two_damaged_copies_refuse_to_start() {
    let mut rack = LocalRack::new(3);
    rack.start_all().await;
    let e1 = rack.initialize(sleds(0..3)).await;
    let key = rack.key(&sled(1), e1, "disk").await.unwrap();
    let [a, b] = rack.data_files(&sled(1));

    // A flipped byte in one copy, then the other copy truncated: each time
    // the agent starts from the good copy and rewrites the bad one.
    for (bad, how) in [(&a, "flip"), (&b, "truncate")] {
        rack.stop(&sled(1)).await;
        let mut bytes = std::fs::read(bad).unwrap();
        if how == "flip" {
            let last = bytes.len() - 1;
            bytes[last] ^= 0x40;
        } else {
            bytes.truncate(bytes.len() / 2);
        }
        std::fs::write(bad, &bytes).unwrap();
        rack.start(&sled(1)).await;
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "{how}: repaired");
        assert_eq!(rack.key(&sled(1), e1, "disk").await.unwrap(), key, "{how}: same state");
    }

    // Both copies damaged: the agent refuses to start and names both files.
    rack.stop(&sled(1)).await;
    for path in [&a, &b] {
        let mut bytes = std::fs::read(path).unwrap();
        bytes[20] ^= 1;
        std::fs::write(path, &bytes).unwrap();
    }
    let error = tq_node::agent::start(&rack.configs[&sled(1)]).await.err().unwrap().to_string();
    for path in [&a, &b] {
        assert!(error.contains(&path.display().to_string()), "{error}");
    }
    rack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_and_local_apis_refuse_with_typed_errors() {
    let mut rack = LocalRack::new(3);
    rack.start_all().await;
    let e1 = rack.initialize(sleds(0..3)).await;
    let (control_http, control) = rack.raw_control(&sled(0));
    let http = &rack.http;

    // A certificate-shaped value (its signature is not checked before the
    // refusals below).
    let certificate = |rack_id: tq_types::RackId, epoch: u64| {
        serde_json::json!({
            "rack_id": rack_id, "epoch": epoch,
            "config_digest": "00".repeat(32), "signature": "00".repeat(64),
        })
    };
    // Commit of an epoch the node never prepared: 409 and the node's error.
    let rack_id = rack.cp.rack_id().unwrap();
    let r = control_http
        .post(format!("{control}/v1/commit"))
        .json(&serde_json::json!({ "rack_id": rack_id, "epoch": 9, "certificate": certificate(rack_id, 9) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], serde_json::json!({ "not_prepared": 9 }), "{body}");
    // Another rack: 409 with the shared refusal.
    let other = tq_types::RackId(uuid::Uuid::from_u128(1));
    let r = control_http
        .post(format!("{control}/v1/commit"))
        .json(&serde_json::json!({ "rack_id": other, "epoch": 1, "certificate": certificate(other, 1) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"]["refused"]["rack_id_mismatch"].is_object(), "{body}");
    // A reconfiguration signed by another authority: 403, unauthorized.
    let forged = trust_quorum::crypto::authority::Authority::from_secret_bytes(&[7; 32])
        .sign_reconfigure(tq_types::ReconfigureMsg {
            rack_id,
            epoch: Epoch(2),
            last_committed_epoch: Some(e1),
            members: sleds(0..3),
            threshold: tq_types::Threshold(2),
            coordinator: sled(0),
        })
        .unwrap();
    let r =
        control_http.post(format!("{control}/v1/reconfigure")).json(&forged).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["refused"]["unauthorized"], "bad_signature", "{body}");
    // A malformed body: 4xx, and the node is untouched.
    let r = control_http
        .post(format!("{control}/v1/reconfigure"))
        .header("content-type", "application/json")
        .body("{\"epoch\": \"seven\"}")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let status = rack.client(&sled(0)).status().await.unwrap();
    assert_eq!(status.latest_committed, Some(e1));

    // The local API wants the token, and bounds the context.
    let local = rack.agents[&sled(0)].local_addr();
    let r = http
        .post(format!("http://{local}/v1/key"))
        .json(&serde_json::json!({ "epoch": e1, "context": "disk" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let long = "x".repeat(tq_node::local::MAX_CONTEXT_LEN + 1);
    let (status, _) = rack.key(&sled(0), e1, &long).await.unwrap_err();
    assert_eq!(status, 400);
    // An epoch that is not committed is refused, not waited for.
    let (status, body) = rack.key(&sled(0), Epoch(5), "disk").await.unwrap_err();
    assert_eq!(status, 409, "{body}");
    // The commit long-poll answers at once when a newer commit exists.
    let r = http
        .get(format!("http://{local}/v1/commits?after=0"))
        .bearer_auth(rack.agents[&sled(0)].token())
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["latest_committed"], serde_json::json!(e1.0));
    rack.shutdown().await;
}

/// An agent embedded in a current-thread runtime writes and commits too.
#[tokio::test(flavor = "current_thread")]
async fn an_agent_runs_on_a_current_thread_runtime() {
    let mut rack = LocalRack::new(3);
    rack.start_all().await;
    let e1 = rack.initialize(sleds(0..3)).await;
    same_key_everywhere(&rack, e1).await;
    rack.shutdown().await;
}
