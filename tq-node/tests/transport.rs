//! The peer transport over real mutual TLS on 127.0.0.1, with certificates
//! from `keys::generate_rack`. Every wait is bounded (`within`, `Sled::next`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::arithmetic_side_effects,
    missing_docs
)]

mod transport_support;

use std::collections::{BTreeMap, BTreeSet};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tq_node::frame;
use tq_node::keys::{self, RackCa};
use tq_node::tls::{self, CertIdentity, Identity, TlsError};
use tq_node::transport::TransportEvent::{Connected, Disconnected, Message};
use tq_types::codec::MAX_PEER_MSG_LEN;
use transport_support::*;

fn cert(path: &std::path::Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(path).unwrap()
}

#[test]
fn generated_rack_layout_and_identities() {
    let rack = Rack::new(3);
    let dir = rack.dir.path();
    assert_eq!(rack.keys.ca_cert, dir.join("ca.pem"));
    assert_eq!(rack.keys.sled_ids(), vec![id(0), id(1), id(2)]);
    assert_eq!(rack.keys.sleds[0].id, "PPP-PPPPPPP:00000000000".parse().unwrap());
    for (i, sled) in rack.keys.sleds.iter().enumerate() {
        assert_eq!(sled.files.cert, dir.join(i.to_string()).join("cert.pem"));
        assert_eq!(sled.files.key, dir.join(i.to_string()).join("key.pem"));
        assert_eq!(tls::peer_id(&cert(&sled.files.cert)).unwrap(), id(i));
        assert_eq!(rack.identity(i).sled_id(), Some(&id(i)));
    }
    let control = cert(&rack.keys.control.cert);
    assert_eq!(tls::cert_identity(&control).unwrap(), CertIdentity::ControlPlane);
    assert!(matches!(tls::peer_id(&control), Err(TlsError::NotASled)));
    assert!(tls::peer_id(&cert(&rack.keys.ca_cert)).is_err());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for key in [&rack.keys.ca_key, &rack.keys.sleds[1].files.key, &rack.keys.control.key] {
            let mode = std::fs::metadata(key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", key.display());
        }
    }
    // Keys are never overwritten.
    assert!(keys::generate_rack(dir, 1).is_err());
    // The CA on disk can issue more sleds, trusted like the first ones.
    let ca = RackCa::load(&rack.keys.ca_cert, &rack.keys.ca_key).unwrap();
    let odd: tq_types::BaseboardId = "PPP-PPPPPPP:odd serial/é".parse().unwrap();
    let files = ca.issue_sled(&odd, &dir.join("extra")).unwrap();
    let extra = Identity::load(&rack.keys.ca_cert, &files.cert, &files.key).unwrap();
    assert_eq!(extra.sled_id(), Some(&odd));
    assert_eq!(keys::parse_sled_uri(&keys::sled_uri(&odd)), Some(odd));
    assert_eq!(keys::parse_sled_uri("urn:trust-quorum:sled:%50PP-PPPPPPP:0"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sleds_exchange_messages_both_ways() {
    let rack = Rack::new(2);
    let mut sleds = mesh(&rack, 2).await;
    assert_eq!(sleds[0].next().await, Connected(id(1)));
    assert_eq!(sleds[1].next().await, Connected(id(0)));

    sleds[0].handle.send(&id(1), msg(1));
    assert_eq!(sleds[1].next().await, Message { from: id(0), msg: Box::new(msg(1)) });
    sleds[1].handle.send(&id(0), msg(2));
    assert_eq!(sleds[0].next().await, Message { from: id(1), msg: Box::new(msg(2)) });

    // Shutdown returns once the listeners are closed, too.
    let addrs: Vec<_> = sleds.iter().map(|s| s.addr).collect();
    for sled in sleds {
        sled.shutdown().await;
    }
    for addr in addrs {
        assert!(within(tokio::net::TcpStream::connect(addr)).await.is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_sleds_form_a_full_mesh_with_one_connection_per_pair() {
    let rack = Rack::new(3);
    // All three listen, then all start dialing at once.
    let mut sleds = mesh(&rack, 3).await;
    for (i, sled) in sleds.iter_mut().enumerate() {
        let mut seen = BTreeSet::new();
        for _ in 0..2 {
            match sled.next().await {
                Connected(p) => assert!(seen.insert(p)),
                other => panic!("sled {i}: {other:?}"),
            }
        }
        let others: BTreeSet<_> = (0..3).filter(|j| *j != i).map(id).collect();
        assert_eq!(seen, others);
    }
    // Every pair talks both ways; a second connection, or a flapping one,
    // would show up here as an extra Connected or Disconnected.
    for (i, sled) in sleds.iter().enumerate() {
        for j in (0..3).filter(|j| *j != i) {
            sled.handle.send(&id(j), msg((10 * i + j) as u64));
        }
    }
    for (j, sled) in sleds.iter_mut().enumerate() {
        let mut got = BTreeSet::new();
        for _ in 0..2 {
            match sled.next().await {
                Message { from, msg: m } => {
                    let i = (0..3).find(|i| id(*i) == from).unwrap();
                    assert_eq!(*m, msg((10 * i + j) as u64));
                    got.insert(i);
                }
                other => panic!("sled {j}: {other:?}"),
            }
        }
        assert_eq!(got.len(), 2);
        sled.assert_quiet();
    }
    for sled in sleds {
        sled.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_ca_and_unlisted_or_wrong_direction_peers_are_refused() {
    let rack = Rack::new(3);
    let other_ca = RackCa::generate().unwrap();
    // Trusts both CAs, so only their own certificates can be the problem.
    let mut both_cas = std::fs::read(&rack.keys.ca_cert).unwrap();
    both_cas.extend_from_slice(other_ca.cert_pem().as_bytes());
    let foreign = |i: usize| {
        let files =
            other_ca.issue_sled(&id(i), &rack.dir.path().join(format!("foreign-{i}"))).unwrap();
        let read = |p| std::fs::read(p).unwrap();
        Identity::from_pem(&both_cas, &read(&files.cert), &read(&files.key)).unwrap()
    };

    // Sled 1 accepts from sled 0 (and would dial sled 2); sled 2 lists only
    // sled 1.
    let unused = bind().await.local_addr().unwrap();
    let mut s1 =
        Sled::start(&rack, 1, bind().await, [(id(0), unused), (id(2), unused)].into(), |_| {});
    let mut s2 = Sled::start(&rack, 2, bind().await, [(id(1), unused)].into(), |_| {});

    // Sled 0's id, certificate from another CA: refused.
    assert!(within(raw_connect(&foreign(0), s1.addr)).await.is_err());
    // The control plane is not a sled.
    assert!(within(raw_connect(&rack.control_identity(), s1.addr)).await.is_err());
    // Sled 2 has the larger id: only sled 1 dials that pair.
    assert!(within(raw_connect(&rack.identity(2), s1.addr)).await.is_err());
    // Sled 0 is genuine but not one of sled 2's peers.
    assert!(within(raw_connect(&rack.identity(0), s2.addr)).await.is_err());
    // Each refusal was decided before the client saw it: no events.
    s1.assert_quiet();
    s2.assert_quiet();

    // The transport still accepts the genuine sled 0.
    let _ok = within(raw_connect(&rack.identity(0), s1.addr)).await.unwrap();
    assert_eq!(s1.next().await, Connected(id(0)));

    // Dialing: a server presenting a foreign certificate for sled 1 is
    // refused by the dialer (every retry), which never reports it.
    let impostor = bind().await;
    let impostor_addr = impostor.local_addr().unwrap();
    let mut s0 = Sled::start(&rack, 0, bind().await, [(id(1), impostor_addr)].into(), |_| {});
    let foreign_1 = foreign(1);
    for _ in 0..2 {
        let (tcp, _) = within(impostor.accept()).await.unwrap();
        assert!(within(foreign_1.acceptor().accept(tcp)).await.is_err());
    }
    s0.assert_quiet();

    for sled in [s0, s1, s2] {
        sled.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_is_its_owner_whatever_address_it_is_reached_at() {
    let rack = Rack::new(3);
    // Sled 0 expects sled 1 at an address where sled 2's certificate answers.
    let impostor = bind().await;
    let mut s0 = Sled::start(
        &rack,
        0,
        bind().await,
        [(id(1), impostor.local_addr().unwrap())].into(),
        |_| {},
    );
    let (tcp, _) = within(impostor.accept()).await.unwrap();
    let mut stream = within(rack.identity(2).acceptor().accept(tcp)).await.unwrap();
    // TLS succeeds (same CA) but sled 0 sees sled 2's id and hangs up
    // without a hello.
    assert!(within(frame::read_hello(&mut stream)).await.is_err());
    s0.assert_quiet();
    s0.shutdown().await;

    // A client holding sled 0's certificate is sled 0 to sled 2, whichever
    // peer it might pretend to be.
    let unused = bind().await.local_addr().unwrap();
    let peers = BTreeMap::from([(id(0), unused), (id(1), unused)]);
    let mut s2 = Sled::start(&rack, 2, bind().await, peers, |_| {});
    let mut raw = within(raw_connect(&rack.identity(0), s2.addr)).await.unwrap();
    assert_eq!(s2.next().await, Connected(id(0)));
    within(frame::write_frame(&mut raw, &msg(5))).await.unwrap();
    assert_eq!(s2.next().await, Message { from: id(0), msg: Box::new(msg(5)) });
    s2.handle.send(&id(0), msg(6));
    assert_eq!(within(frame::read_frame(&mut raw)).await.unwrap(), msg(6));
    // Nothing addressed to sled 1 reaches it.
    s2.handle.send(&id(1), msg(7));
    s2.handle.send(&id(0), msg(8));
    assert_eq!(within(frame::read_frame(&mut raw)).await.unwrap(), msg(8));
    s2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_garbage_frames_close_only_their_connection() {
    let rack = Rack::new(3);
    let unused = bind().await.local_addr().unwrap();
    let mut s2 =
        Sled::start(&rack, 2, bind().await, [(id(0), unused), (id(1), unused)].into(), |_| {});
    let mut s0 = Sled::start(&rack, 0, bind().await, [(id(2), s2.addr)].into(), |_| {});
    assert_eq!(s0.next().await, Connected(id(2)));
    assert_eq!(s2.next().await, Connected(id(0)));

    let oversized = u32::try_from(MAX_PEER_MSG_LEN + 1).unwrap().to_be_bytes().to_vec();
    let mut garbage = 3u32.to_be_bytes().to_vec();
    garbage.extend_from_slice(&[0xff, 0xff, 0xff]);
    for (round, bad) in [oversized, garbage].into_iter().enumerate() {
        let mut raw = within(raw_connect(&rack.identity(1), s2.addr)).await.unwrap();
        assert_eq!(s2.next().await, Connected(id(1)));
        // Only the prefix of the oversized frame is sent: the transport must
        // refuse it without waiting for a body.
        within(async {
            raw.write_all(&bad).await?;
            raw.flush().await
        })
        .await
        .unwrap();
        assert_eq!(s2.next().await, Disconnected(id(1)));
        assert!(read_until_closed(&mut raw).await.is_empty());

        // The other connection is unaffected.
        let n = 100 + round as u64;
        s0.handle.send(&id(2), msg(n));
        assert_eq!(s2.next().await, Message { from: id(0), msg: Box::new(msg(n)) });
        s2.handle.send(&id(0), msg(n + 10));
        assert_eq!(s0.next().await, Message { from: id(2), msg: Box::new(msg(n + 10)) });
    }
    // And the transport still accepts sled 1.
    let mut raw = within(raw_connect(&rack.identity(1), s2.addr)).await.unwrap();
    assert_eq!(s2.next().await, Connected(id(1)));
    within(frame::write_frame(&mut raw, &msg(9))).await.unwrap();
    assert_eq!(s2.next().await, Message { from: id(1), msg: Box::new(msg(9)) });
    s0.assert_quiet();
    s0.shutdown().await;
    s2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_goes_away_is_disconnected_then_reconnected() {
    let rack = Rack::new(2);
    let mut sleds = mesh(&rack, 2).await;
    let (addr0, addr1) = (sleds[0].addr, sleds[1].addr);
    let mut s1 = sleds.pop().unwrap();
    let mut s0 = sleds.pop().unwrap();
    assert_eq!(s0.next().await, Connected(id(1)));
    assert_eq!(s1.next().await, Connected(id(0)));

    // The larger id (the accepting side) restarts on the same address.
    s1.shutdown().await;
    assert_eq!(s0.next().await, Disconnected(id(1)));
    let listener = tokio::net::TcpListener::bind(addr1).await.unwrap();
    let mut s1 = Sled::start(&rack, 1, listener, [(id(0), addr0)].into(), |_| {});
    assert_eq!(s0.next().await, Connected(id(1)));
    assert_eq!(s1.next().await, Connected(id(0)));
    s0.handle.send(&id(1), msg(1));
    assert_eq!(s1.next().await, Message { from: id(0), msg: Box::new(msg(1)) });

    // The smaller id (the dialing side) restarts.
    s0.shutdown().await;
    assert_eq!(s1.next().await, Disconnected(id(0)));
    let listener = tokio::net::TcpListener::bind(addr0).await.unwrap();
    let mut s0 = Sled::start(&rack, 0, listener, [(id(1), addr1)].into(), |_| {});
    assert_eq!(s0.next().await, Connected(id(1)));
    assert_eq!(s1.next().await, Connected(id(0)));
    s1.handle.send(&id(0), msg(2));
    assert_eq!(s0.next().await, Message { from: id(1), msg: Box::new(msg(2)) });

    s0.shutdown().await;
    s1.shutdown().await;
}

// Current-thread runtime: the connection's writer cannot run between the
// synchronous `send`s below, so the queue fills deterministically.
#[tokio::test(flavor = "current_thread")]
async fn a_full_outbound_queue_drops_the_connection_which_comes_back() {
    let rack = Rack::new(2);
    // Sled 1 is played by hand: it completes handshakes and never reads.
    let peer = bind().await;
    let peer_addr = peer.local_addr().unwrap();
    let mut s0 = Sled::start(&rack, 0, bind().await, [(id(1), peer_addr)].into(), |c| {
        c.queue_len = 2;
    });
    let mut first = raw_accept(&peer, &rack.identity(1)).await;
    assert_eq!(s0.next().await, Connected(id(1)));

    for n in 0..3 {
        s0.handle.send(&id(1), msg(n));
    }
    assert_eq!(s0.next().await, Disconnected(id(1)));
    // The connection was closed with its queue: nothing was sent.
    assert!(read_until_closed(&mut first).await.is_empty());

    let mut second = raw_accept(&peer, &rack.identity(1)).await;
    assert_eq!(s0.next().await, Connected(id(1)));
    s0.handle.send(&id(1), msg(42));
    assert_eq!(within(frame::read_frame(&mut second)).await.unwrap(), msg(42));
    s0.assert_quiet();
    s0.shutdown().await;
    let mut byte = [0u8; 1];
    assert!(!matches!(within(second.read(&mut byte)).await, Ok(n) if n > 0));
}
