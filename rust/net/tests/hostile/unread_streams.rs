//! Attack: connections from 127.0.0.2 on both ALPNs that open up to 100
//! bidirectional and 100 unidirectional streams each, fill them as far as
//! flow control lets while the node's protocols read none of them, and
//! start on the stream the node does read a frame that declares the
//! maximum length but sends a few bytes. Closed connections are reopened
//! for the whole window. The node's memory must stay bounded, an honest
//! peer on 127.0.0.1 must still sync with it, and one address must not
//! hold many connections open on it.
//!
//! The attacker runs in the same process, so the growth measured is the
//! node's and the attacker's together; the attacker holds little: every
//! stream writes clones of one shared chunk, which quinn keeps by
//! reference until the node acknowledges it.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mosaik_net::endpoint::{DISCOVERY_ALPN, GROUPS_ALPN};
use mosaik_net::link::{encode_frame, DEFAULT_MAX_FRAME};
use mosaik_net::EndpointAddr;
use tokio::task::JoinSet;

use crate::common::{self, Attacker, Isolated, WAIT};

const ATTACKER_IP: [u8; 4] = [127, 0, 0, 2];
/// How long the attack goes on.
const WINDOW: Duration = Duration::from_secs(6);
/// Connections each slot opens at most over the window.
const ROUNDS_PER_SLOT: usize = 10;
/// Pause of a slot after a refused dial, so refusals do not spin.
const REFUSED_PAUSE: Duration = Duration::from_millis(100);
/// Bytes written per stream at most (above quinn's default stream window of
/// 1.25 MB, so the node's flow control is what stops the writer).
const STREAM_FILL: usize = 2 * 1024 * 1024;
const CHUNK: usize = 64 * 1024;
/// A write or stream open that makes no progress for this long has hit flow
/// control or the stream limit.
const STALL: Duration = Duration::from_millis(250);
/// A connection still open this long after its handshake counts as held
/// (a node that accepts and closes at once is not holding it); well below
/// the node's handshake and Hello timeouts (1 s and more).
const HELD_GRACE: Duration = Duration::from_millis(250);
/// The attack stops early past this growth, to spare the machine; it is far
/// above the bound asserted.
const SAFETY_CEILING: u64 = 768 * 1024 * 1024;
const MAX_RSS_GROWTH_MIB: f64 = 64.0;
const MEMORY_SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// Bound on the honest sync made during the attack.
const HONEST_SYNC_BOUND: Duration = Duration::from_secs(5);

struct Plan {
    connections: usize,
    bidi: usize,
    uni: usize,
}

/// What the attack's tasks record.
#[derive(Default)]
struct Tally {
    stop: AtomicBool,
    established: AtomicUsize,
    refused: AtomicUsize,
    held: AtomicUsize,
    peak_held: AtomicUsize,
    /// Bytes the attacker's quinn accepted into stream buffers (shared
    /// chunks, so not memory); only part of them reaches the node.
    bytes_queued: AtomicU64,
    /// UDP bytes the attacker's connections put on the wire.
    bytes_sent: AtomicU64,
}

impl Tally {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

struct Measured {
    rss_growth_mib: f64,
    honest_sync_ok: bool,
    peak_held: usize,
}

/// Writes the shared chunk into `send` until the stream's window is full,
/// the fill is reached or the attack stops; hands the stream back so that
/// it stays open.
async fn fill_stream(
    mut send: quinn::SendStream,
    chunk: Bytes,
    tally: Arc<Tally>,
) -> quinn::SendStream {
    for _ in 0..STREAM_FILL / CHUNK {
        if tally.stopped() {
            break;
        }
        match tokio::time::timeout(STALL, send.write_chunk(chunk.clone())).await {
            Ok(Ok(())) => {
                tally
                    .bytes_queued
                    .fetch_add(CHUNK as u64, Ordering::Relaxed);
            }
            Ok(Err(_)) | Err(_) => break,
        }
    }
    send
}

/// The first stream starts a frame of the maximum length and sends a few
/// bytes of it; the others are filled. Every stream is held until the
/// connection ends.
async fn flood(conn: quinn::Connection, plan: Arc<Plan>, chunk: Bytes, tally: Arc<Tally>) {
    // Streams are kept open until the connection ends: a dropped send
    // half would finish its stream, ending the node's wait on the first.
    let mut streams = Vec::new();
    if let Ok(Ok((mut send, _recv))) = tokio::time::timeout(STALL, conn.open_bi()).await {
        let mut start = (DEFAULT_MAX_FRAME as u32).to_be_bytes().to_vec();
        start.extend_from_slice(b"few");
        let _ = tokio::time::timeout(STALL, send.write_all(&start)).await;
        streams.push(send);
    }
    let mut writers = JoinSet::new();
    for i in 1..plan.bidi + plan.uni {
        let opened = if i < plan.bidi {
            tokio::time::timeout(STALL, conn.open_bi())
                .await
                .map(|r| r.map(|(send, _recv)| send))
        } else {
            tokio::time::timeout(STALL, conn.open_uni()).await
        };
        let Ok(Ok(send)) = opened else { continue };
        writers.spawn(fill_stream(send, chunk.clone(), tally.clone()));
        if tally.stopped() {
            break;
        }
    }
    let bound = tokio::time::Instant::now() + WINDOW;
    while let Ok(Some(Ok(send))) = tokio::time::timeout_at(bound, writers.join_next()).await {
        streams.push(send);
    }
    let _ = tokio::time::timeout_at(bound, conn.closed()).await;
}

/// One slot of the attack: a connection on `alpn`, reopened whenever the
/// node closes it, until the window ends.
async fn slot(
    attacker: Arc<Attacker>,
    to: EndpointAddr,
    alpn: &'static [u8],
    plan: Arc<Plan>,
    chunk: Bytes,
    tally: Arc<Tally>,
    deadline: tokio::time::Instant,
) {
    for _ in 0..ROUNDS_PER_SLOT {
        if tally.stopped() || tokio::time::Instant::now() >= deadline {
            return;
        }
        let Ok(conn) = attacker.endpoint.connect(to.peer_id, &to.addrs, alpn).await else {
            tally.refused.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(REFUSED_PAUSE).await;
            continue;
        };
        tally.established.fetch_add(1, Ordering::Relaxed);
        let mut flooding = tokio::spawn(flood(
            conn.clone(),
            plan.clone(),
            chunk.clone(),
            tally.clone(),
        ));
        let grace = tokio::time::sleep(HELD_GRACE);
        tokio::pin!(grace);
        let held = tokio::select! {
            () = &mut grace => true,
            _ = conn.closed() => false,
        };
        if held {
            let now = tally.held.fetch_add(1, Ordering::Relaxed) + 1;
            tally.peak_held.fetch_max(now, Ordering::Relaxed);
        }
        let _ = tokio::time::timeout_at(deadline, &mut flooding).await;
        flooding.abort();
        if held {
            tally.held.fetch_sub(1, Ordering::Relaxed);
        }
        tally
            .bytes_sent
            .fetch_add(conn.stats().udp_tx.bytes, Ordering::Relaxed);
        conn.close(quinn::VarInt::from_u32(0), b"attack over");
    }
}

/// Samples the process's resident memory until `tally` stops or `bound`
/// passes, stopping the attack past the safety ceiling; the peak growth.
fn watch_memory(
    baseline: u64,
    tally: Arc<Tally>,
    done: Arc<AtomicBool>,
    bound: Duration,
) -> (u64, u64) {
    let (vm_baseline, until) = (common::vm_size(), Instant::now() + bound);
    let (mut rss_peak, mut vm_peak) = (baseline, vm_baseline);
    while !done.load(Ordering::Relaxed) && Instant::now() < until {
        rss_peak = rss_peak.max(common::rss());
        vm_peak = vm_peak.max(common::vm_size());
        if rss_peak.saturating_sub(baseline) > SAFETY_CEILING {
            tally.stop.store(true, Ordering::Relaxed);
        }
        std::thread::sleep(MEMORY_SAMPLE_EVERY);
    }
    (rss_peak - baseline, vm_peak.saturating_sub(vm_baseline))
}

async fn unread_streams_from_one_address(plan: Plan, label: &str) -> Measured {
    let v = Isolated::start(common::config()).await;
    let h = common::start(common::config()).await;
    let attacker = Arc::new(Attacker::bind(ATTACKER_IP));
    let to = v.net.local_addr().clone();
    // Known to the node's discovery, the attacker passes the router on the
    // groups ALPN and reaches the bond handshake.
    let own = encode_frame(&common::hello(vec![attacker.own_entry()])).unwrap();
    common::deliver(&attacker.endpoint, &to, &own, WAIT).await;
    let attacker_known = v.net.discovery().unwrap().knows(&attacker.peer_id());

    let (plan, tally) = (Arc::new(plan), Arc::new(Tally::default()));
    let chunk = Bytes::from(vec![0xa5; CHUNK]);
    common::release_free_memory();
    let baseline = common::rss();
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (tally, done) = (tally.clone(), done.clone());
        std::thread::spawn(move || watch_memory(baseline, tally, done, WINDOW + WAIT))
    };
    let deadline = tokio::time::Instant::now() + WINDOW;
    let mut slots = JoinSet::new();
    for i in 0..plan.connections {
        let alpn = if i % 2 == 0 {
            DISCOVERY_ALPN
        } else {
            GROUPS_ALPN
        };
        slots.spawn(slot(
            attacker.clone(),
            to.clone(),
            alpn,
            plan.clone(),
            chunk.clone(),
            tally.clone(),
            deadline,
        ));
    }
    // The honest sync is made under pressure: once the attack has grown the
    // process by half the bound, or halfway through the window.
    common::wait_until(WINDOW / 2, || {
        common::rss().saturating_sub(baseline) as f64 >= MAX_RSS_GROWTH_MIB * common::MIB / 2.0
            || tally.stopped()
    })
    .await;
    let since = Instant::now();
    let sync = tokio::time::timeout(HONEST_SYNC_BOUND, h.sync_with(&to)).await;
    let (honest_sync_ok, sync_ms) = (matches!(sync, Ok(Ok(()))), since.elapsed().as_millis());
    let bound = deadline + WAIT;
    while let Ok(Some(_)) = tokio::time::timeout_at(bound, slots.join_next()).await {}
    slots.abort_all();
    done.store(true, Ordering::Relaxed);
    let memory = tokio::task::spawn_blocking(move || watcher.join().expect("watcher"));
    let (rss_growth, vm_growth) = tokio::time::timeout(WAIT, memory)
        .await
        .expect("watcher outlived its bound")
        .expect("watcher task");
    let peak_held = tally.peak_held.load(Ordering::Relaxed);
    let rss_growth_mib = common::mib(rss_growth);
    eprintln!(
        "hostile: unread_streams_{label} connections={} streams={}+{} rss_growth_mib={rss_growth_mib:.1} \
         vm_growth_mib={:.1} bytes_queued_mib={:.1} bytes_sent_mib={:.1} established={} refused={} peak_held={peak_held} \
         attacker_known={attacker_known} honest_sync_ok={honest_sync_ok} honest_sync_ms={sync_ms} safety_stop={}",
        plan.connections,
        plan.bidi,
        plan.uni,
        common::mib(vm_growth),
        common::mib(tally.bytes_queued.load(Ordering::Relaxed)),
        common::mib(tally.bytes_sent.load(Ordering::Relaxed)),
        tally.established.load(Ordering::Relaxed),
        tally.refused.load(Ordering::Relaxed),
        tally.stopped(),
    );
    attacker.close().await;
    common::close_all(&[&h]).await;
    v.close().await;
    Measured {
        rss_growth_mib,
        honest_sync_ok,
        peak_held,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_streams_of_four_connections_do_not_pin_memory() {
    let _lock = common::exclusive().await;
    let plan = Plan {
        connections: 4,
        bidi: 100,
        uni: 100,
    };
    let m = unread_streams_from_one_address(plan, "four").await;
    assert_node_unharmed(&m);
}

/// The attack left the process within its memory bound and the node
/// served an honest peer meanwhile.
fn assert_node_unharmed(m: &Measured) {
    assert!(
        m.rss_growth_mib <= MAX_RSS_GROWTH_MIB,
        "the process grew by {:.1} MiB",
        m.rss_growth_mib
    );
    assert!(
        m.honest_sync_ok,
        "an honest peer could not sync during the attack"
    );
}

/// Most of 300 connections from one address must be refused.
const MAX_HELD_OF_300: usize = 150;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_connections_from_one_address_are_mostly_refused() {
    let _lock = common::exclusive().await;
    let plan = Plan {
        connections: 300,
        bidi: 100,
        uni: 100,
    };
    let m = unread_streams_from_one_address(plan, "three_hundred").await;
    assert!(
        m.peak_held <= MAX_HELD_OF_300,
        "one address held {} connections open at once",
        m.peak_held
    );
    assert_node_unharmed(&m);
}
