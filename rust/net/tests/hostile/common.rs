//! What the hostile-peer tests share: honest nodes (on the test's runtime or
//! on one of their own), raw attacker endpoints, self-signed fake entries,
//! UDP sinks that count what reaches them, readings of the process's memory,
//! and the lock that keeps measuring tests apart from every other test.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mosaik_core::{ConsensusConfig, Digest, GroupId, NetworkId, PeerId};
use mosaik_net::close;
use mosaik_net::discovery::wire;
use mosaik_net::discovery::wire::DiscoveryMessage;
use mosaik_net::discovery::{PeerEntry, SignedEntry};
use mosaik_net::endpoint::{Endpoint, DISCOVERY_ALPN};
use mosaik_net::groups::hint::Settings;
use mosaik_net::groups::{Group, GroupSpec};
use mosaik_net::identity::Identity;
use mosaik_net::link::encode_frame;
use mosaik_net::{EndpointAddr, Network, NetworkConfig};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The network every honest node and every attacker names.
pub const NET: &str = "hostile";
/// Bound of one honest step (a sync, a start, a close, a mesh forming).
pub const WAIT: Duration = Duration::from_secs(10);
/// Bound of waiting for the other tests to give way.
const LOCK_WAIT: Duration = Duration::from_secs(300);
/// Pause between two looks at a condition that is waited for.
const POLL: Duration = Duration::from_millis(20);
/// Gossip period of honest nodes: short, so that honest paths converge
/// quickly; the entry ttl stays at its default.
const GOSSIP: Duration = Duration::from_secs(1);
/// The group the honest members of a test join.
pub const GROUP: GroupId = Digest([7; 32]);
const GROUP_SECRET: Digest = Digest([42; 32]);
/// How long a sink's reader waits for a datagram before it looks whether
/// it should stop, and how long it may run at most.
const SINK_READ_TIMEOUT: Duration = Duration::from_millis(100);
const SINK_LIFETIME: Duration = Duration::from_secs(120);

static MEASURING: RwLock<()> = RwLock::const_new(());

/// Taken by a test that must not overlap a measuring test.
pub async fn shared() -> RwLockReadGuard<'static, ()> {
    tokio::time::timeout(LOCK_WAIT, MEASURING.read())
        .await
        .expect("other tests held the lock too long")
}

/// Taken by a test that measures the whole process (memory, latency): no
/// other test of this target runs meanwhile.
pub async fn exclusive() -> RwLockWriteGuard<'static, ()> {
    tokio::time::timeout(LOCK_WAIT, MEASURING.write())
        .await
        .expect("other tests held the lock too long")
}

pub fn config() -> NetworkConfig {
    let mut config = NetworkConfig::new(NET);
    config.discovery.gossip_interval = GOSSIP;
    config.handshake_timeout = Duration::from_secs(1);
    config
}

pub async fn start(config: NetworkConfig) -> Arc<Network> {
    tokio::time::timeout(WAIT, Network::start(config))
        .await
        .expect("start timed out")
        .expect("start failed")
}

pub async fn close_all(nets: &[&Arc<Network>]) {
    for net in nets {
        tokio::time::timeout(WAIT, net.close())
            .await
            .expect("close timed out");
    }
}

/// The group the honest members join, with the default consensus timing
/// (heartbeat 500 ms, a bond dropped after 10 missed heartbeats).
pub fn group_spec() -> GroupSpec {
    GroupSpec {
        group_id: GROUP,
        secret: GROUP_SECRET,
        consensus: ConsensusConfig::default(),
        handshake_timeout: Duration::from_secs(1),
        settings: Settings::default(),
    }
}

/// An honest node on a runtime of its own, so that a stall of its threads
/// (what some attacks cause) does not stall the peers that watch it.
pub struct Isolated {
    runtime: Option<tokio::runtime::Runtime>,
    pub net: Arc<Network>,
}

impl Isolated {
    pub async fn start(config: NetworkConfig) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("isolated-node")
            .enable_all()
            .build()
            .expect("runtime");
        let started = runtime.spawn(Network::start(config));
        let net = tokio::time::timeout(WAIT, started)
            .await
            .expect("start timed out")
            .expect("start task failed")
            .expect("start failed");
        Isolated {
            runtime: Some(runtime),
            net,
        }
    }

    pub async fn close(mut self) {
        if let Some(runtime) = &self.runtime {
            let net = self.net.clone();
            let closing = runtime.spawn(async move { net.close().await });
            let _ = tokio::time::timeout(WAIT, closing).await;
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which is not allowed inside the test's
        // runtime; a failed test lands here without `close`.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// An outsider: a key pair it made itself and a bare endpoint.
pub struct Attacker {
    pub identity: Arc<Identity>,
    pub endpoint: Arc<Endpoint>,
}

impl Attacker {
    /// Binds an ephemeral port on `ip` (any 127.0.0.0/8 address works on
    /// Linux, where the whole block is routed to lo).
    pub fn bind(ip: [u8; 4]) -> Self {
        Self::bind_as(Arc::new(Identity::generate().expect("identity")), ip)
    }

    /// Another endpoint (on 127.0.0.1) for the same key pair.
    pub fn with_identity(identity: Arc<Identity>) -> Self {
        Self::bind_as(identity, [127, 0, 0, 1])
    }

    fn bind_as(identity: Arc<Identity>, ip: [u8; 4]) -> Self {
        let endpoint = Endpoint::bind(
            identity.clone(),
            SocketAddr::from((ip, 0)),
            &[],
            &mosaik_net::Limits::default(),
        )
        .expect("attacker bind");
        Attacker {
            identity,
            endpoint: Arc::new(endpoint),
        }
    }

    pub fn peer_id(&self) -> PeerId {
        self.identity.peer_id()
    }

    /// A valid entry for the attacker's own key at its own address.
    pub fn own_entry(&self) -> SignedEntry {
        signed_entry(&self.identity, vec![self.endpoint.bound()], vec![])
    }

    pub async fn close(&self) {
        let _ = tokio::time::timeout(WAIT, self.endpoint.close(close::SUCCESS)).await;
    }
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A current entry of `identity`'s own peer, signed by it.
pub fn signed_entry(
    identity: &Identity,
    addrs: Vec<SocketAddr>,
    groups: Vec<GroupId>,
) -> SignedEntry {
    PeerEntry {
        peer_id: identity.peer_id(),
        network_id: NetworkId::from_text(NET),
        addrs,
        groups,
        hints: vec![],
        version: unix_millis(),
    }
    .sign(identity)
}

/// `count` entries, each of a fresh identity, all listing `addrs` and
/// `groups`; made on every core since each identity costs a certificate.
pub fn fake_entries(count: usize, addrs: &[SocketAddr], groups: &[GroupId]) -> Vec<SignedEntry> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = count.div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = (0..threads)
            .map(|t| {
                let n = per_thread.min(count.saturating_sub(t * per_thread));
                scope.spawn(move || {
                    (0..n)
                        .map(|_| {
                            let identity = Identity::generate().expect("identity");
                            signed_entry(&identity, addrs.to_vec(), groups.to_vec())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().expect("entry thread"))
            .collect()
    })
}

pub fn hello(entries: Vec<SignedEntry>) -> DiscoveryMessage {
    DiscoveryMessage::Hello {
        network_id: NetworkId::from_text(NET),
        entries,
    }
}

/// `entries` as a node sends them: a `Hello` with the first chunk, then
/// `More` frames, each within the discovery frame limit; the frames'
/// bytes back to back.
pub fn hello_frames(entries: Vec<SignedEntry>) -> Vec<u8> {
    let mut chunks = wire::chunks(entries).into_iter();
    let mut out = encode_frame(&hello(chunks.next().unwrap_or_default())).expect("encode");
    for entries in chunks {
        out.extend(encode_frame(&DiscoveryMessage::More { entries }).expect("encode"));
    }
    out
}

/// The length of `msg` as a frame's payload (without the length prefix).
pub fn payload_len(msg: &DiscoveryMessage) -> usize {
    encode_frame(msg).expect("encode").len() - 4
}

/// What one delivered Hello cost the attacker and whether it was answered.
#[derive(Clone, Copy, Debug, Default)]
pub struct Delivery {
    /// Bytes the attacker's side put on the wire, handshake included.
    pub sent: u64,
    /// The node started a reply, which it does only after handling the
    /// Hello (false: it closed, the dial failed, or `bound` passed).
    pub answered: bool,
}

/// Dials `to` on the discovery ALPN, sends `frame` as its Hello and waits
/// (within `bound`) until the node answers or closes.
pub async fn deliver(
    attacker: &Endpoint,
    to: &EndpointAddr,
    frame: &[u8],
    bound: Duration,
) -> Delivery {
    let Ok(conn) = attacker
        .connect(to.peer_id, &to.addrs, DISCOVERY_ALPN)
        .await
    else {
        return Delivery::default();
    };
    let exchange = async {
        let (mut send, mut recv) = conn.open_bi().await.ok()?;
        // A node that has read all it takes of one exchange stops the rest
        // of the stream and answers: the reply is read either way.
        if send.write_all(frame).await.is_ok() {
            let _ = send.finish();
        }
        let mut prefix = [0u8; 4];
        recv.read_exact(&mut prefix).await.ok()
    };
    let answered = matches!(tokio::time::timeout(bound, exchange).await, Ok(Some(())));
    let sent = conn.stats().udp_tx.bytes;
    conn.close(quinn::VarInt::from_u32(close::SUCCESS), b"done");
    Delivery { sent, answered }
}

/// A UDP socket on 127.0.0.1 that counts the bytes sent to it and never
/// answers; read by a thread of its own so that a busy runtime does not
/// make it drop datagrams.
pub struct Sink {
    pub addr: SocketAddr,
    bytes: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

impl Sink {
    pub fn bind() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("sink bind");
        socket
            .set_read_timeout(Some(SINK_READ_TIMEOUT))
            .expect("sink timeout");
        let addr = socket.local_addr().expect("sink addr");
        let bytes = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (counted, stopped) = (bytes.clone(), stop.clone());
        let reader = std::thread::spawn(move || {
            let until = Instant::now() + SINK_LIFETIME;
            let mut buf = vec![0u8; 65_536];
            while !stopped.load(Ordering::Relaxed) && Instant::now() < until {
                if let Ok((n, _)) = socket.recv_from(&mut buf) {
                    counted.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        });
        Sink {
            addr,
            bytes,
            stop,
            reader: Some(reader),
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// A `kB` field of /proc/self/status, in bytes.
fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Resident memory of this process.
pub fn rss() -> u64 {
    status_kb("VmRSS:")
}

/// Virtual memory of this process (reserved, not necessarily resident).
pub fn vm_size() -> u64 {
    status_kb("VmSize:")
}

extern "C" {
    fn malloc_trim(pad: usize) -> i32;
}

/// Hands memory freed by earlier tests back to the system, so that a
/// baseline taken next is not inflated by it and new allocations show up
/// as growth instead of reusing it unseen.
pub fn release_free_memory() {
    // SAFETY: glibc's malloc_trim only returns free pages of its arenas.
    unsafe {
        malloc_trim(0);
    }
}

pub const MIB: f64 = 1024.0 * 1024.0;

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB
}

/// The value of metric `name` on `net`, 0 when absent.
pub fn metric(net: &Network, name: &str) -> f64 {
    net.metrics()
        .into_iter()
        .find(|(n, _)| n == name)
        .map_or(0.0, |(_, v)| v)
}

pub const CATALOG_SIZE: &str = "mosaik.discovery.catalog.size";

/// Waits until `cond` holds or `bound` passes; whether it held.
pub async fn wait_until(bound: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + bound;
    loop {
        if cond() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// True when every pair of (group, peer) is bonded.
pub fn all_bonded(pairs: &[(&Group, PeerId)]) -> bool {
    pairs.iter().all(|(g, p)| g.is_bonded(p))
}

/// How many of `peers` `net`'s catalog holds.
pub fn known(net: &Network, peers: &[PeerId]) -> usize {
    let Ok(discovery) = net.discovery() else {
        return 0;
    };
    peers.iter().filter(|p| discovery.knows(p)).count()
}
