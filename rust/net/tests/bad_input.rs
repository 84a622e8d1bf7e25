//! Every kind of bad input a node can meet on the wire has a defined
//! outcome (a close code, a dropped entry) and leaves the node serving.

use std::sync::Arc;
use std::time::Duration;

use mosaik_core::{NetworkId, PeerId};
use mosaik_net::close;
use mosaik_net::discovery::wire::DiscoveryMessage;
use mosaik_net::discovery::PeerEntry;
use mosaik_net::endpoint::{Endpoint, DISCOVERY_ALPN, GROUPS_ALPN};
use mosaik_net::identity::Identity;
use mosaik_net::link::{self, encode_frame};
use mosaik_net::{EndpointAddr, NetError, Network, NetworkConfig};

const WAIT: Duration = Duration::from_secs(10);

async fn start(name: &str) -> Arc<Network> {
    Network::start(NetworkConfig::new(name)).await.unwrap()
}

/// A bare endpoint that speaks the protocols by hand.
fn raw_client() -> Endpoint {
    let identity = Arc::new(Identity::generate().unwrap());
    Endpoint::bind(
        identity,
        "127.0.0.1:0".parse().unwrap(),
        &[],
        &mosaik_net::Limits::default(),
    )
    .unwrap()
}

/// The application code `conn` ends with (bounded wait).
async fn close_code(conn: &quinn::Connection) -> u64 {
    let err = tokio::time::timeout(WAIT, conn.closed()).await.unwrap();
    match err {
        quinn::ConnectionError::ApplicationClosed(c) => c.error_code.into_inner(),
        other => panic!("closed without an application code: {other}"),
    }
}

fn metric(net: &Network, name: &str) -> f64 {
    net.metrics()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
        .unwrap()
}

async fn assert_still_serves(net: &Network) {
    let probe = start("test").await;
    tokio::time::timeout(WAIT, probe.sync_with(net.local_addr()))
        .await
        .unwrap()
        .expect("node should still serve honest peers");
    probe.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialer_refuses_a_key_other_than_the_one_dialled() {
    let (a, b) = (start("test").await, start("test").await);
    let impostor = EndpointAddr {
        peer_id: PeerId(Identity::generate().unwrap().peer_id().0),
        addrs: b.local_addr().addrs.clone(),
    };
    let err = a.sync_with(&impostor).await.unwrap_err();
    assert!(matches!(err, NetError::Connect { .. }), "{err}");
    assert!(a.discovery().unwrap().entries().is_empty());
    assert!(b.discovery().unwrap().entries().is_empty());
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_of_another_network_is_closed_with_101_and_its_entries_dropped() {
    let (a, b) = (start("one").await, start("two").await);
    let err = a.sync_with(b.local_addr()).await.unwrap_err();
    assert_eq!(err.close_code(), Some(u64::from(close::DIFFERENT_NETWORK)));
    assert!(a.discovery().unwrap().entries().is_empty());
    assert!(b.discovery().unwrap().entries().is_empty());
    assert_eq!(metric(&b, "mosaik.discovery.entries.rejected"), 1.0);
    a.close().await;
    b.close().await;
}

async fn send_raw_on_discovery(target: &Network, bytes: &[u8]) -> u64 {
    let client = raw_client();
    let addr = target.local_addr();
    let conn = client
        .connect(addr.peer_id, &addr.addrs, DISCOVERY_ALPN)
        .await
        .unwrap();
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    send.write_all(bytes).await.unwrap();
    let code = close_code(&conn).await;
    client.close(close::SUCCESS).await;
    code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_close_the_link_with_400_and_the_node_keeps_serving() {
    let node = start("test").await;
    let code = send_raw_on_discovery(&node, &[0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0xff]).await;
    assert_eq!(code, u64::from(close::PROTOCOL_VIOLATION));
    assert_still_serves(&node).await;
    node.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_above_the_maximum_closes_the_link_with_400() {
    let node = start("test").await;
    let code = send_raw_on_discovery(&node, &[0xff, 0xff, 0xff, 0xff, 1, 2, 3]).await;
    assert_eq!(code, u64::from(close::PROTOCOL_VIOLATION));
    assert_still_serves(&node).await;
    node.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_peer_on_the_groups_alpn_is_closed_with_401() {
    let node = start("test").await;
    let client = raw_client();
    let addr = node.local_addr();
    let conn = client
        .connect(addr.peer_id, &addr.addrs, GROUPS_ALPN)
        .await
        .unwrap();
    assert_eq!(close_code(&conn).await, u64::from(close::UNKNOWN_PEER));
    client.close(close::SUCCESS).await;
    assert_still_serves(&node).await;
    node.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_with_a_bad_signature_is_dropped_and_counted() {
    let node = start("test").await;
    let forger = Identity::generate().unwrap();
    let victim = Identity::generate().unwrap();
    let mut forged = PeerEntry {
        peer_id: victim.peer_id(),
        network_id: NetworkId::from_text("test"),
        addrs: vec!["127.0.0.1:9".parse().unwrap()],
        groups: vec![],
        hints: vec![],
        version: 1,
    }
    .sign(&forger);
    forged.entry.version = 2;
    let client = raw_client();
    let (_conn, reply) = send_hello(&client, &node, vec![own_entry(&client), forged]).await;
    assert!(matches!(reply, Ok(DiscoveryMessage::Catalog { .. })));
    assert!(!node.discovery().unwrap().knows(&victim.peer_id()));
    assert!(node.discovery().unwrap().knows(&client.peer_id()));
    assert_eq!(metric(&node, "mosaik.discovery.entries.rejected"), 1.0);
    client.close(close::SUCCESS).await;
    node.close().await;
}

/// Sends one `Hello` of `entries` from `client` to `node`; the connection
/// and the first reply.
async fn send_hello(
    client: &Endpoint,
    node: &Network,
    entries: Vec<mosaik_net::discovery::SignedEntry>,
) -> (quinn::Connection, Result<DiscoveryMessage, NetError>) {
    let addr = node.local_addr();
    let conn = client
        .connect(addr.peer_id, &addr.addrs, DISCOVERY_ALPN)
        .await
        .unwrap();
    let (mut tx, mut rx) = link::open(&conn, link::DEFAULT_MAX_FRAME).await.unwrap();
    let hello = DiscoveryMessage::Hello {
        network_id: NetworkId::from_text("test"),
        entries,
    };
    tx.send_frame(&encode_frame(&hello).unwrap()).await.unwrap();
    tx.finish();
    let reply = tokio::time::timeout(WAIT, rx.recv()).await.unwrap();
    (conn, reply)
}

/// The raw client's own signed entry, as a node would put first in a hello.
fn own_entry(client: &Endpoint) -> mosaik_net::discovery::SignedEntry {
    PeerEntry {
        peer_id: client.peer_id(),
        network_id: NetworkId::from_text("test"),
        addrs: client.advertised().to_vec(),
        groups: vec![],
        hints: vec![],
        version: 1,
    }
    .sign(client.identity())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_is_served_only_to_a_peer_that_sends_its_own_entry() {
    let (node, honest) = (start("test").await, start("test").await);
    honest.sync_with(node.local_addr()).await.unwrap();
    let client = raw_client();
    let (conn, reply) = send_hello(&client, &node, vec![]).await;
    assert!(reply.is_err(), "an empty hello got an answer: {reply:?}");
    assert_eq!(
        close_code(&conn).await,
        u64::from(close::PROTOCOL_VIOLATION)
    );
    client.close(close::SUCCESS).await;
    assert_still_serves(&node).await;
    node.close().await;
    honest.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_releases_the_port_and_every_task() {
    let node = start("test").await;
    let bound = node.local_addr().addrs[0];
    node.close().await;
    assert!(matches!(
        node.sync_with(&EndpointAddr {
            peer_id: PeerId([1; 32]),
            addrs: vec![bound]
        })
        .await,
        Err(NetError::Closed)
    ));
    let mut again = NetworkConfig::new("test");
    again.addrs = vec![bound];
    let rebound = Network::start(again)
        .await
        .expect("port should be free after close");
    rebound.close().await;
}
