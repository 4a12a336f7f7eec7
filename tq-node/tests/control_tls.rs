//! The control API over mutual TLS: only the control plane's certificate
//! from the rack CA is served, and the client accepts answers only from the
//! sled it meant to reach.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]
#![allow(clippy::arithmetic_side_effects, missing_docs)]

mod agents_support;

use std::time::Duration;

use agents_support::{LocalRack, raw_client, sled};
use tq_node::api::client::{CallError, ControlClient};
use tq_node::tls::Identity;

fn sled_identity(rack: &LocalRack, i: usize) -> Identity {
    let keys = rack.dir.path().join("keys");
    Identity::load(
        &keys.join("ca.pem"),
        &keys.join(format!("{i}/cert.pem")),
        &keys.join(format!("{i}/key.pem")),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_control_plane_certificate_is_served() {
    let mut rack = LocalRack::new(2);
    rack.start(&sled(0)).await;
    let addr = rack.configs[&sled(0)].control_listen;

    // The control plane is served.
    let status = rack.client(&sled(0)).status().await.unwrap();
    assert_eq!(status.latest_committed, None);

    // A sled's certificate, valid and from the same CA, is not.
    let (as_sled, base) = raw_client(&sled_identity(&rack, 1), addr);
    let refused = as_sled.get(format!("{base}/v1/status")).send().await;
    assert!(refused.is_err(), "a sled certificate was served: {refused:?}");

    // Nor is the control plane of another rack (another CA).
    let other = tempfile::tempdir().unwrap();
    let keys = tq_node::keys::generate_rack(other.path(), 1).unwrap();
    let foreign = Identity::load(&keys.ca_cert, &keys.control.cert, &keys.control.key).unwrap();
    let (as_foreign, base) = raw_client(&foreign, addr);
    assert!(as_foreign.get(format!("{base}/v1/status")).send().await.is_err());

    // Nor plain HTTP.
    let plain = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    assert!(plain.get(format!("http://{addr}/v1/status")).send().await.is_err());

    // The agent still serves the control plane afterwards.
    assert!(rack.client(&sled(0)).status().await.is_ok());
    rack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_refuses_an_answer_from_another_sled() {
    let mut rack = LocalRack::new(2);
    rack.start(&sled(0)).await;
    // A client for sled 1, pointed (by a wrong inventory, or a redirect) at
    // sled 0's address.
    let addr = rack.configs[&sled(0)].control_listen;
    let client = ControlClient::new(&rack.control, sled(1), addr, Duration::from_secs(20)).unwrap();
    match client.status().await {
        Err(CallError::WrongSled { expected, found }) => {
            assert_eq!(expected, sled(1));
            assert!(found.contains(&sled(0).to_string()), "{found}");
        }
        other => panic!("expected WrongSled, got {other:?}"),
    }
    rack.shutdown().await;
}
