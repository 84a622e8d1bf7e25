//! The bond handshake refuses every kind of bad initiator with the exact
//! close code, counts the refusal, and keeps bonding with honest peers.

use std::sync::Arc;
use std::time::Duration;

use mosaik_core::{ConsensusConfig, Digest, GroupId, NetworkId};
use mosaik_net::close::{self, groups as codes};
use mosaik_net::endpoint::GROUPS_ALPN;
use mosaik_net::groups::hint::Settings;
use mosaik_net::groups::proof::{proof_for, session_material};
use mosaik_net::groups::wire::{BondMessage, Proof};
use mosaik_net::groups::{Group, GroupSpec};
use mosaik_net::link::{self, encode_frame};
use mosaik_net::{Network, NetworkConfig};

const WAIT: Duration = Duration::from_secs(10);
const SECRET: Digest = Digest([42; 32]);
const GROUP: GroupId = Digest([7; 32]);

fn spec() -> GroupSpec {
    let consensus = ConsensusConfig {
        heartbeat_interval: Duration::from_millis(50),
        heartbeat_jitter: Duration::from_millis(10),
        ..ConsensusConfig::default()
    };
    GroupSpec {
        group_id: GROUP,
        secret: SECRET,
        consensus,
        handshake_timeout: Duration::from_millis(300),
        settings: Settings::default(),
    }
}

async fn start() -> Arc<Network> {
    let mut config = NetworkConfig::new("test");
    config.handshake_timeout = Duration::from_millis(300);
    Network::start(config).await.unwrap()
}

/// A node in the group and a client it knows through discovery.
async fn node_and_client() -> (Arc<Network>, Arc<Group>, Arc<Network>) {
    let node = start().await;
    let group = node.join(spec()).unwrap();
    let client = start().await;
    client.sync_with(node.local_addr()).await.unwrap();
    (node, group, client)
}

async fn dial(client: &Network, node: &Network) -> quinn::Connection {
    let addr = node.local_addr();
    client
        .endpoint()
        .unwrap()
        .connect(addr.peer_id, &addr.addrs, GROUPS_ALPN)
        .await
        .unwrap()
}

/// The code `conn` ends with; the handle is dropped so the socket can go.
async fn close_code(conn: quinn::Connection) -> u64 {
    match tokio::time::timeout(WAIT, conn.closed()).await.unwrap() {
        quinn::ConnectionError::ApplicationClosed(c) => c.error_code.into_inner(),
        other => panic!("closed without an application code: {other}"),
    }
}

fn honest_proof(conn: &quinn::Connection, client: &Network) -> Proof {
    let ekm = session_material(conn, &GROUP).unwrap();
    proof_for(&SECRET, &ekm, &client.peer_id())
}

fn start_message(network_id: NetworkId, group_id: GroupId, proof: Proof) -> Vec<u8> {
    encode_frame(&BondMessage::HandshakeStart {
        network_id,
        group_id,
        proof,
        bonds: vec![],
    })
    .unwrap()
}

/// Sends `frame` as the first bytes of the bond stream; the close code.
async fn refused_with(conn: quinn::Connection, frame: &[u8]) -> u64 {
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    send.write_all(frame).await.unwrap();
    drop(send);
    close_code(conn).await
}

fn rejected(node: &Network, reason: &str) -> f64 {
    let name = format!("mosaik.groups.bonds.rejected{{reason={reason}}}");
    node.metrics()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map_or(0.0, |(_, v)| v)
}

/// A fresh honest member bonds with the node afterwards.
async fn still_bonds_with_honest_peers(node: &Network, group: Arc<Group>) {
    let honest = start().await;
    let theirs = honest.join(spec()).unwrap();
    honest.sync_with(node.local_addr()).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !(group.is_bonded(&honest.peer_id()) && theirs.is_bonded(&node.peer_id())) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "honest peer never bonded"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    honest.close().await;
}

async fn shut(nets: &[&Arc<Network>]) {
    for net in nets {
        net.close().await;
    }
}

/// Sends the frame `make` builds as the first bytes of a bond stream and
/// checks the refusal: its close code, its metric, no bond, and that the
/// node still bonds with an honest peer afterwards.
async fn assert_refused(
    make: impl FnOnce(&quinn::Connection, &Network, &Network) -> Vec<u8>,
    code: u32,
    reason: &str,
) {
    let (node, group, client) = node_and_client().await;
    let conn = dial(&client, &node).await;
    let frame = make(&conn, &node, &client);
    assert_eq!(refused_with(conn, &frame).await, u64::from(code));
    assert_eq!(rejected(&node, reason), 1.0);
    assert!(!group.is_bonded(&client.peer_id()));
    still_bonds_with_honest_peers(&node, group).await;
    shut(&[&node, &client]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_instead_of_handshake_start_is_closed_with_30400() {
    let garbage = |_: &_, _: &_, _: &_| vec![0, 0, 0, 3, 0xff, 0xff, 0xff];
    assert_refused(garbage, codes::INVALID_HANDSHAKE, "invalid_handshake").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_group_id_is_closed_with_30404() {
    let unknown = |conn: &_, node: &Network, client: &_| {
        start_message(
            node.network_id(),
            Digest([8; 32]),
            honest_proof(conn, client),
        )
    };
    assert_refused(unknown, codes::GROUP_NOT_FOUND, "group_not_found").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_proof_is_closed_with_30405() {
    let forged = |conn: &_, node: &Network, client: &Network| {
        let ekm = session_material(conn, &GROUP).unwrap();
        let proof = proof_for(&Digest([1; 32]), &ekm, &client.peer_id());
        start_message(node.network_id(), GROUP, proof)
    };
    assert_refused(forged, codes::INVALID_PROOF, "invalid_proof").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_network_id_is_closed_with_101() {
    let elsewhere = |conn: &_, _: &_, client: &_| {
        start_message(
            NetworkId::from_text("elsewhere"),
            GROUP,
            honest_proof(conn, client),
        )
    };
    assert_refused(elsewhere, close::DIFFERENT_NETWORK, "different_network").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_past_the_handshake_timeout_is_closed_with_30408() {
    let (node, group, client) = node_and_client().await;
    let conn = dial(&client, &node).await;
    assert_eq!(close_code(conn).await, u64::from(codes::TIMEOUT));
    assert_eq!(rejected(&node, "timeout"), 1.0);
    still_bonds_with_honest_peers(&node, group).await;
    shut(&[&node, &client]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proof_replayed_from_another_session_is_closed_with_30405() {
    let (node, group, client) = node_and_client().await;
    let first = dial(&client, &node).await;
    let proof = honest_proof(&first, &client);
    // The first session is refused for its network id, so no bond forms.
    let frame = start_message(NetworkId::from_text("elsewhere"), GROUP, proof);
    assert_eq!(
        refused_with(first, &frame).await,
        u64::from(close::DIFFERENT_NETWORK)
    );
    let second = dial(&client, &node).await;
    let replay = start_message(node.network_id(), GROUP, proof);
    assert_eq!(
        refused_with(second, &replay).await,
        u64::from(codes::INVALID_PROOF)
    );
    assert!(!group.is_bonded(&client.peer_id()));
    still_bonds_with_honest_peers(&node, group).await;
    shut(&[&node, &client]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_bond_to_an_already_bonded_peer_is_closed_with_30429() {
    let (node, group, client) = node_and_client().await;
    let first = dial(&client, &node).await;
    let (mut tx, mut rx) = link::open(&first, link::DEFAULT_MAX_FRAME).await.unwrap();
    tx.send_frame(&start_message(
        node.network_id(),
        GROUP,
        honest_proof(&first, &client),
    ))
    .await
    .unwrap();
    let reply: BondMessage = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(reply, BondMessage::HandshakeEnd { .. }));
    assert!(group.is_bonded(&client.peer_id()));
    let second = dial(&client, &node).await;
    let frame = start_message(node.network_id(), GROUP, honest_proof(&second, &client));
    assert_eq!(
        refused_with(second, &frame).await,
        u64::from(codes::ALREADY_BONDED)
    );
    assert_eq!(rejected(&node, "already_bonded"), 1.0);
    still_bonds_with_honest_peers(&node, group).await;
    shut(&[&node, &client]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acceptor_proof_binds_to_its_own_id_so_reflection_fails() {
    let (node, group, client) = node_and_client().await;
    let conn = dial(&client, &node).await;
    let (mut tx, mut rx) = link::open(&conn, link::DEFAULT_MAX_FRAME).await.unwrap();
    let ours = honest_proof(&conn, &client);
    tx.send_frame(&start_message(node.network_id(), GROUP, ours))
        .await
        .unwrap();
    let reply: BondMessage = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    let BondMessage::HandshakeEnd { proof, .. } = reply else {
        panic!("expected HandshakeEnd")
    };
    let ekm = session_material(&conn, &GROUP).unwrap();
    assert_eq!(proof, proof_for(&SECRET, &ekm, &node.peer_id()));
    assert_ne!(proof, ours, "a reflected proof would equal the initiator's");
    drop(group);
    shut(&[&node, &client]).await;
}

/// The group of id `[id; 32]` under our key, with a machine of that
/// signature and version.
fn variant(id: u8, machine: &[u8], machine_version: u32) -> GroupSpec {
    GroupSpec {
        group_id: Digest([id; 32]),
        settings: Settings {
            machine: Digest::of(machine),
            machine_version,
            ..Settings::default()
        },
        ..spec()
    }
}

/// Waits until `done` holds, failing with `what` after `WAIT`.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_peer_holding_the_key_with_another_machine_is_counted_once_and_never_bonds() {
    let a = start().await;
    let ours = a.join(variant(7, b"counter_v1", 1)).unwrap();
    // The other node runs two variants under the key: each is told of once.
    let b = start().await;
    let theirs = b.join(variant(8, b"counter_v2", 1)).unwrap();
    b.join(variant(10, b"counter_v3", 1)).unwrap();
    // A third node under another key, listing a group of its own.
    let outsider = start().await;
    outsider
        .join(GroupSpec {
            group_id: Digest([9; 32]),
            secret: Digest([43; 32]),
            ..spec()
        })
        .unwrap();
    b.sync_with(a.local_addr()).await.unwrap();
    outsider.sync_with(a.local_addr()).await.unwrap();
    eventually("both sides count the mismatches", || {
        rejected(&a, "config_mismatch") == 2.0 && rejected(&b, "config_mismatch") == 2.0
    })
    .await;
    eventually("everyone knows everyone", || {
        a.discovery().unwrap().entries().len() == 2 && b.discovery().unwrap().entries().len() == 2
    })
    .await;
    // Refreshes and more catalog traffic warn no more.
    for _ in 0..5 {
        outsider.sync_with(b.local_addr()).await.unwrap();
        outsider.sync_with(a.local_addr()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rejected(&a, "config_mismatch"), 2.0);
    assert!(!ours.is_bonded(&b.peer_id()) && !theirs.is_bonded(&a.peer_id()));
    shut(&[&a, &b, &outsider]).await;
}

#[tokio::test]
async fn members_learn_the_machine_version_each_bonded_peer_runs() {
    let a = start().await;
    let ours = a.join(variant(7, b"counter", 1)).unwrap();
    let b = start().await;
    let theirs = b.join(variant(7, b"counter", 3)).unwrap();
    b.sync_with(a.local_addr()).await.unwrap();
    eventually("the two bond", || {
        ours.is_bonded(&b.peer_id()) && theirs.is_bonded(&a.peer_id())
    })
    .await;
    eventually("each reads the other's version", || {
        ours.member_versions() == vec![(b.peer_id(), Some(3))]
            && theirs.member_versions() == vec![(a.peer_id(), Some(1))]
    })
    .await;
    assert_eq!(rejected(&a, "config_mismatch"), 0.0);
    shut(&[&a, &b]).await;
}
