//! Attacks on the discovery exchange itself, found by review: a dialer
//! that never reads the catalog it asked for, `More` frames full of
//! entries beyond the bounds, hellos of forged updates, and fake
//! identities that fill the catalog before an honest newcomer arrives.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mosaik_net::discovery::wire::DiscoveryMessage;
use mosaik_net::discovery::PeerEntry;
use mosaik_net::endpoint::DISCOVERY_ALPN;
use mosaik_net::identity::Identity;
use mosaik_net::link::encode_frame;
use mosaik_net::{tls, EndpointAddr, Limits};

use crate::common::{self, Attacker, WAIT};

/// Source addresses and connections per address of the stalling attack:
/// enough to take every pending slot a node has by default.
const STALL_IPS: u8 = 8;
const STALLS_PER_IP: usize = 32;
/// How long the attacker keeps writing oversized `More` frames.
const FLOOD: Duration = Duration::from_millis(2500);
const MAX_RSS_GROWTH_MIB: f64 = 64.0;

/// Dials `to` from `ep` with receive windows of 16 bytes, sends a valid
/// hello and never reads the answer.
async fn stall(
    ep: &quinn::Endpoint,
    to: &EndpointAddr,
) -> Option<(quinn::Connection, quinn::SendStream, quinn::RecvStream)> {
    let identity = Identity::generate().ok()?;
    let mut transport = quinn::TransportConfig::default();
    transport.stream_receive_window(quinn::VarInt::from_u32(16));
    transport.receive_window(quinn::VarInt::from_u32(16));
    transport.keep_alive_interval(Some(Duration::from_secs(1)));
    let config =
        tls::client_config(&identity, to.peer_id, DISCOVERY_ALPN, Arc::new(transport)).ok()?;
    let connecting = ep
        .connect_with(config, to.addrs[0], tls::SERVER_NAME)
        .ok()?;
    let conn = tokio::time::timeout(WAIT, connecting).await.ok()?.ok()?;
    let (mut send, recv) = conn.open_bi().await.ok()?;
    let own = common::signed_entry(&identity, vec![ep.local_addr().ok()?], vec![]);
    send.write_all(&encode_frame(&common::hello(vec![own])).ok()?)
        .await
        .ok()?;
    let _ = send.finish();
    Some((conn, send, recv))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialer_that_never_reads_the_catalog_does_not_hold_the_node() {
    let _lock = common::shared().await;
    let node = common::start(common::config()).await;
    let to = node.local_addr().clone();
    let mut held = Vec::new();
    for ip in 2..2 + STALL_IPS {
        let ep = quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, ip], 0))).unwrap();
        for _ in 0..STALLS_PER_IP {
            if let Some(stalled) = stall(&ep, &to).await {
                held.push(stalled);
            }
        }
    }
    let attempted = held.len();
    // The node gives each exchange its reply timeout (2 s) to be read.
    let pending = "mosaik.net.connections.pending";
    let freed = common::wait_until(WAIT, || common::metric(&node, pending) <= 1.0).await;
    let honest = common::start(common::config()).await;
    let sync = tokio::time::timeout(WAIT, honest.sync_with(&to)).await;
    eprintln!(
        "hostile: stalled_catalogs connections={attempted} freed={freed} pending_after={} honest_sync_ok={}",
        common::metric(&node, pending),
        matches!(sync, Ok(Ok(())))
    );
    drop(held);
    common::close_all(&[&honest, &node]).await;
    assert!(
        attempted > 0,
        "precondition: the stalling dials went through"
    );
    assert!(freed, "stalled exchanges kept their pending slots");
    assert!(
        matches!(sync, Ok(Ok(()))),
        "an honest node could not sync: {sync:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_beyond_the_bounds_are_dropped_as_their_frames_arrive() {
    let _lock = common::exclusive().await;
    let node = common::start(common::config()).await;
    let to = node.local_addr().clone();
    // One entry of 40,000 addresses fills a frame: 240 KB on the wire,
    // five times as much decoded.
    let forger = Identity::generate().unwrap();
    let addrs = (0..40_000u32)
        .map(|i| SocketAddr::from(([127, 1, (i >> 8) as u8, i as u8], 1)))
        .collect();
    let bad = PeerEntry {
        peer_id: forger.peer_id(),
        network_id: mosaik_core::NetworkId::from_text(common::NET),
        addrs,
        groups: vec![],
        hints: vec![],
        version: 1,
    }
    .sign(&forger);
    let more =
        bytes::Bytes::from(encode_frame(&DiscoveryMessage::More { entries: vec![bad] }).unwrap());
    common::release_free_memory();
    let baseline = common::rss();
    let (stop, peak) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(baseline)),
    );
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            let until = Instant::now() + FLOOD + WAIT;
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                peak.fetch_max(common::rss(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let attackers: Vec<Arc<Attacker>> = (0..4)
        .map(|_| Arc::new(Attacker::bind([127, 0, 0, 2])))
        .collect();
    let floods: Vec<_> = attackers
        .iter()
        .map(|attacker| {
            let (attacker, to, more) = (attacker.clone(), to.clone(), more.clone());
            tokio::spawn(async move {
                let conn = attacker
                    .endpoint
                    .connect(to.peer_id, &to.addrs, DISCOVERY_ALPN)
                    .await
                    .ok()?;
                let (mut send, _recv) = conn.open_bi().await.ok()?;
                let hello = encode_frame(&common::hello(vec![attacker.own_entry()])).ok()?;
                send.write_all(&hello).await.ok()?;
                let started = Instant::now();
                let mut frames = 0u64;
                while started.elapsed() < FLOOD {
                    let write = tokio::time::timeout(FLOOD, send.write_chunk(more.clone()));
                    if !matches!(write.await, Ok(Ok(()))) {
                        break;
                    }
                    frames += 1;
                }
                Some((frames, conn))
            })
        })
        .collect();
    let mut results = Vec::new();
    for flood in floods {
        let done = tokio::time::timeout(FLOOD + WAIT, flood).await;
        results.push(done.expect("flood outlived its bound").expect("flood task"));
    }
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let frames: u64 = results.iter().flatten().map(|(n, _)| n).sum();
    let growth = common::mib(peak.load(Ordering::Relaxed).saturating_sub(baseline));
    eprintln!(
        "hostile: malformed_more_frames connections=4 frames={frames} frame_bytes={} rss_growth_mib={growth:.1}",
        more.len()
    );
    drop(results);
    for attacker in &attackers {
        attacker.close().await;
    }
    let entries = node.discovery().unwrap().entries();
    node.close().await;
    assert!(frames > 0, "precondition: frames were written");
    assert!(
        entries.iter().all(|e| e.peer_id != forger.peer_id()),
        "an entry beyond the bounds was kept"
    );
    assert!(
        growth <= MAX_RSS_GROWTH_MIB,
        "the process grew by {growth:.1} MiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_updates_end_the_merge_at_the_first_bad_signature() {
    let _lock = common::shared().await;
    let node = common::start(common::config()).await;
    let to = node.local_addr().clone();
    let fakes = common::fake_entries(200, &[SocketAddr::from(([127, 0, 0, 1], 9))], &[]);
    let attacker = Attacker::bind([127, 0, 0, 1]);
    let mut introduce = vec![attacker.own_entry()];
    introduce.extend(fakes.iter().cloned());
    common::deliver(
        &attacker.endpoint,
        &to,
        &common::hello_frames(introduce),
        WAIT,
    )
    .await;
    assert!(
        common::metric(&node, common::CATALOG_SIZE) >= 200.0,
        "precondition"
    );
    // Newer versions of every fake with a garbage signature: each would be
    // an update worth verifying.
    let forged: Vec<_> = fakes
        .iter()
        .map(|e| {
            let mut f = e.clone();
            f.entry.version += 1;
            f.signature = vec![0; 64];
            f
        })
        .collect();
    let rejected = "mosaik.discovery.entries.rejected";
    let before = common::metric(&node, rejected);
    let mut hello = vec![attacker.own_entry()];
    hello.extend(forged);
    let delivery =
        common::deliver(&attacker.endpoint, &to, &common::hello_frames(hello), WAIT).await;
    let after = common::metric(&node, rejected);
    eprintln!(
        "hostile: forged_updates answered={} rejected={}",
        delivery.answered,
        after - before
    );
    attacker.close().await;
    node.close().await;
    assert!(delivery.answered, "the hello was not answered");
    assert_eq!(
        after - before,
        1.0,
        "signatures were checked past the first forgery"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_identities_that_fill_the_catalog_do_not_keep_an_honest_newcomer_out() {
    let _lock = common::shared().await;
    let mut config = common::config();
    config.limits = Limits {
        max_peers: 64,
        ..Limits::default()
    };
    let node = common::start(config).await;
    let to = node.local_addr().clone();
    let attacker = Attacker::bind([127, 0, 0, 1]);
    let mut fill = vec![attacker.own_entry()];
    fill.extend(common::fake_entries(
        100,
        &[SocketAddr::from(([127, 0, 0, 1], 9))],
        &[],
    ));
    common::deliver(&attacker.endpoint, &to, &common::hello_frames(fill), WAIT).await;
    let full = common::metric(&node, common::CATALOG_SIZE);
    let newcomer = common::start(common::config()).await;
    let sync = tokio::time::timeout(WAIT, newcomer.sync_with(&to)).await;
    let known = node.discovery().unwrap().knows(&newcomer.peer_id());
    eprintln!("hostile: catalog_full size={full} newcomer_known={known}");
    attacker.close().await;
    common::close_all(&[&newcomer, &node]).await;
    assert_eq!(full, 64.0, "precondition: the catalog is full");
    assert!(
        matches!(sync, Ok(Ok(()))),
        "the newcomer's sync failed: {sync:?}"
    );
    assert!(known, "the newcomer was kept out of a full catalog");
}
