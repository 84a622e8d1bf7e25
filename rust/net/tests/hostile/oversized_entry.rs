//! Attack: an outsider's self-signed entry that fills a Hello up to the
//! frame limit, by its addresses or by its groups. A node that keeps it
//! sends catalogs above the limit from then on, which every honest peer
//! refuses. The node must stay reachable: honest peers still sync with it,
//! bootstrap from it and keep or regain their bonds through it.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use mosaik_core::{Digest, GroupId};
use mosaik_net::discovery::PeerEntry;
use mosaik_net::identity::Identity;
use mosaik_net::link::{encode_frame, DEFAULT_MAX_FRAME};

use crate::common::{self, Attacker, WAIT};

/// Bound on a fresh node learning the honest peers from the attacked one.
const BOOTSTRAP_BOUND: Duration = Duration::from_secs(5);
/// Bound on a restarted member bonding again with the others.
const REBOND_BOUND: Duration = Duration::from_secs(8);
/// Bytes each filler address or group adds to the encoded entry: an IPv4
/// address with a port below 128 takes 6 bytes, a group id 32.
const ADDR_BYTES: usize = 6;
const GROUP_BYTES: usize = 32;

#[derive(Clone, Copy, Debug)]
enum Fill {
    Addresses,
    Groups,
}

/// The i-th distinct filler address: 127.0.0.1 upwards, ports 1 to 127.
fn filler_addr(i: usize) -> SocketAddr {
    let host = u32::from(Ipv4Addr::new(127, 0, 0, 1)) + (i / 127) as u32;
    SocketAddr::from((Ipv4Addr::from(host), 1 + (i % 127) as u16))
}

fn filler_group(i: usize) -> GroupId {
    Digest::of(&(i as u64).to_le_bytes())
}

/// The attacker's entry, grown by `fill` until a Hello carrying only it is
/// as close under the frame limit as the filler's size allows.
fn entry_filling_a_hello(identity: &Identity, fill: Fill) -> PeerEntry {
    let mut entry = common::signed_entry(identity, vec![filler_addr(0)], vec![]).entry;
    let size = |e: &PeerEntry| common::payload_len(&common::hello(vec![e.clone().sign(identity)]));
    let per_item = match fill {
        Fill::Addresses => ADDR_BYTES,
        Fill::Groups => GROUP_BYTES,
    };
    // The item count's varint prefix grows by at most 4 bytes.
    let items = (DEFAULT_MAX_FRAME - size(&entry) - 4) / per_item;
    match fill {
        Fill::Addresses => entry.addrs.extend((1..=items).map(filler_addr)),
        Fill::Groups => entry.groups.extend((0..items).map(filler_group)),
    }
    assert!(
        size(&entry) <= DEFAULT_MAX_FRAME,
        "the filled Hello must stay under the frame limit"
    );
    entry
}

/// Starts an honest mesh (V with two fellow members), hands V the filled
/// entry, then checks every way honest peers reach V.
async fn node_holding_a_filled_entry_stays_reachable(fill: Fill) {
    let _lock = common::shared().await;
    let label = format!("{fill:?}").to_lowercase();
    let v = common::start(common::config()).await;
    let seed: [u8; 32] = rand::random();
    let mut h2_config = common::config();
    h2_config.secret = Some(seed);
    let (h1, h2) = (
        common::start(common::config()).await,
        common::start(h2_config.clone()).await,
    );
    let (gv, g1, g2) = (
        v.join(common::group_spec()).unwrap(),
        h1.join(common::group_spec()).unwrap(),
        h2.join(common::group_spec()).unwrap(),
    );
    for h in [&h1, &h2] {
        tokio::time::timeout(WAIT, h.sync_with(v.local_addr()))
            .await
            .expect("sync timed out")
            .expect("honest sync before the attack");
    }
    let mesh = [
        (&*gv, h1.peer_id()),
        (&*gv, h2.peer_id()),
        (&*g1, v.peer_id()),
        (&*g2, v.peer_id()),
        (&*g1, h2.peer_id()),
    ];
    assert!(
        common::wait_until(WAIT, || common::all_bonded(&mesh)).await,
        "precondition: the honest mesh forms"
    );

    let attacker = Attacker::bind([127, 0, 0, 1]);
    let entry = entry_filling_a_hello(&attacker.identity, fill);
    let items = entry.addrs.len() + entry.groups.len();
    let entry = entry.sign(&attacker.identity);
    let frame = encode_frame(&common::hello(vec![entry])).unwrap();
    let sent = common::deliver(&attacker.endpoint, v.local_addr(), &frame, WAIT)
        .await
        .sent;
    let held = v.discovery().unwrap().knows(&attacker.peer_id());
    let honest = [h1.peer_id(), h2.peer_id()];

    let h = common::start(common::config()).await;
    let sync = tokio::time::timeout(WAIT, h.sync_with(v.local_addr())).await;
    let sync_ok = matches!(sync, Ok(Ok(())));
    let sync_learned = common::known(&h, &honest);

    let mut f_config = common::config();
    f_config.discovery.bootstrap = vec![v.local_addr().clone()];
    let f = common::start(f_config).await;
    common::wait_until(BOOTSTRAP_BOUND, || {
        common::known(&f, &honest) == honest.len()
    })
    .await;
    let bootstrap_learned = common::known(&f, &honest);

    let kept = common::all_bonded(&mesh);
    common::close_all(&[&h2]).await;
    let departed = [(&*gv, h2.peer_id()), (&*g1, h2.peer_id())];
    assert!(
        common::wait_until(WAIT, || !departed.iter().any(|(g, p)| g.is_bonded(p))).await,
        "the closed member's bonds did not end"
    );
    h2_config.discovery.bootstrap = vec![v.local_addr().clone()];
    let restarted = common::start(h2_config).await;
    let g2 = restarted.join(common::group_spec()).unwrap();
    let since = Instant::now();
    let remesh = [
        (&*gv, restarted.peer_id()),
        (&*g1, restarted.peer_id()),
        (&*g2, v.peer_id()),
        (&*g2, h1.peer_id()),
    ];
    let rebonded = common::wait_until(REBOND_BOUND, || common::all_bonded(&remesh)).await;
    let rebond_ms = since.elapsed().as_millis();

    eprintln!(
        "hostile: oversized_{label} items={items} frame_bytes={} attacker_bytes={sent} entry_held={held} \
         honest_sync_ok={sync_ok} sync_learned={sync_learned}/2 \
         bootstrap_learned={bootstrap_learned}/2 bonds_kept={kept} \
         rebonded={rebonded} rebond_ms={rebond_ms}",
        frame.len()
    );
    attacker.close().await;
    common::close_all(&[&v, &h1, &restarted, &h, &f]).await;

    assert!(sync_ok, "an honest peer could not sync with the node");
    assert_eq!(sync_learned, 2, "the sync did not teach the honest peers");
    assert_eq!(
        bootstrap_learned, 2,
        "bootstrapping from the node taught too little"
    );
    assert!(kept, "honest members lost their bonds");
    assert!(
        rebonded,
        "a restarted member did not bond again within {REBOND_BOUND:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_filled_with_addresses_does_not_cut_a_node_off() {
    node_holding_a_filled_entry_stays_reachable(Fill::Addresses).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_filled_with_groups_does_not_cut_a_node_off() {
    node_holding_a_filled_entry_stays_reachable(Fill::Groups).await;
}
