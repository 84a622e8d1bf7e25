//! The discovery service of one node: serves incoming syncs, dials syncs,
//! and runs the gossip loop. What a peer sends is bounded before it costs
//! anything: entries per exchange, new peers per exchange, and signature
//! checks only for entries that would change the catalog, made outside the
//! catalog's lock.

use std::collections::hash_map::Entry as Slot;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mosaik_core::{GroupId, NetworkId, PeerId};
use rand::seq::SliceRandom;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use super::catalog::{Catalog, Merge, Screen};
use super::entry::{PeerEntry, SignedEntry, MAX_ENTRY_GROUPS};
use super::wire::{self, DiscoveryMessage};
use crate::addr::EndpointAddr;
use crate::close;
use crate::dialing::MAX_DIALLED_ADDRS;
use crate::endpoint::{Endpoint, DIAL_TIMEOUT, DISCOVERY_ALPN};
use crate::error::NetError;
use crate::limits::Limits;
use crate::link::{self, LinkReceiver, LinkSender};
use crate::metrics::{Counter, Sample};

/// Pause that gathers several changes into one push round.
const PUSH_DELAY: Duration = Duration::from_millis(50);

/// Settings of the discovery service.
#[derive(Clone, Debug)]
pub struct DiscoveryConfig {
    /// Period of the own entry's refresh and of random syncs.
    pub gossip_interval: Duration,
    /// An entry not refreshed for this long is purged.
    pub entry_ttl: Duration,
    /// Random peers synced with every gossip interval.
    pub fanout: usize,
    /// Random peers told at once when this node learns something new.
    pub push_fanout: usize,
    /// Bound on waiting for the remote's message.
    pub reply_timeout: Duration,
    pub max_frame: usize,
    pub bootstrap: Vec<EndpointAddr>,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            gossip_interval: Duration::from_secs(3),
            entry_ttl: Duration::from_secs(30),
            fanout: 3,
            push_fanout: 8,
            reply_timeout: Duration::from_secs(2),
            max_frame: link::DEFAULT_MAX_FRAME,
            bootstrap: Vec::new(),
        }
    }
}

#[derive(Default, Debug)]
pub struct DiscoveryMetrics {
    pub discovered: Counter,
    pub departed: Counter,
    pub syncs: Counter,
    pub rejected: Counter,
    /// Well-formed entries left out by a cap (catalog full, too many new
    /// peers in one exchange, too many entries in one exchange).
    pub dropped: Counter,
}

struct State {
    catalog: Catalog,
    own: SignedEntry,
}

pub struct Discovery {
    endpoint: Arc<Endpoint>,
    network_id: NetworkId,
    config: DiscoveryConfig,
    /// New peers one exchange may add.
    max_new_per_exchange: usize,
    /// Entries one exchange may carry (a whole catalog and the sender's own).
    max_entries_per_exchange: usize,
    state: Mutex<State>,
    metrics: DiscoveryMetrics,
    push: Notify,
    changes: watch::Sender<u64>,
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Discovery {
    pub fn new(
        endpoint: Arc<Endpoint>,
        network_id: NetworkId,
        config: DiscoveryConfig,
        limits: &Limits,
    ) -> Arc<Self> {
        let own = PeerEntry {
            peer_id: endpoint.peer_id(),
            network_id,
            addrs: endpoint.advertised().to_vec(),
            groups: Vec::new(),
            version: unix_millis(),
        }
        .sign(endpoint.identity());
        let state = State {
            catalog: Catalog::new(endpoint.peer_id(), network_id, limits.max_peers),
            own,
        };
        Arc::new(Discovery {
            endpoint,
            network_id,
            config,
            max_new_per_exchange: limits.max_new_peers_per_exchange,
            max_entries_per_exchange: limits.max_peers + 1,
            state: Mutex::new(state),
            metrics: DiscoveryMetrics::default(),
            push: Notify::new(),
            changes: watch::channel(0).0,
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Re-signs the own entry with a higher version, changing its groups
    /// when given.
    fn republish(&self, groups: Option<Vec<GroupId>>) {
        let mut state = self.state();
        let mut entry = state.own.entry.clone();
        entry.version = (entry.version + 1).max(unix_millis());
        if let Some(groups) = groups {
            entry.groups = groups;
        }
        state.own = entry.sign(self.endpoint.identity());
    }

    /// Announces the groups this node has joined (the first
    /// `MAX_ENTRY_GROUPS` of them: peers refuse longer entries).
    pub fn set_groups(&self, mut groups: Vec<GroupId>) {
        if groups.len() > MAX_ENTRY_GROUPS {
            log::warn!(
                "{} groups joined: only the first {MAX_ENTRY_GROUPS} are announced to peers",
                groups.len()
            );
            groups.truncate(MAX_ENTRY_GROUPS);
        }
        self.republish(Some(groups));
        self.push.notify_one();
    }

    pub fn knows(&self, peer: &PeerId) -> bool {
        self.state().catalog.contains(peer)
    }

    pub fn entry(&self, peer: &PeerId) -> Option<PeerEntry> {
        self.state().catalog.get(peer).cloned()
    }

    pub fn entries(&self) -> Vec<PeerEntry> {
        self.state().catalog.entries().cloned().collect()
    }

    /// Ticks once for every change of the catalog's peers or contents.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The own entry first, then every known one.
    fn all_signed(&self) -> Vec<SignedEntry> {
        let state = self.state();
        std::iter::once(state.own.clone())
            .chain(state.catalog.signed_entries().cloned())
            .collect()
    }

    /// This node's current signed entry.
    pub fn own_entry(&self) -> SignedEntry {
        self.state().own.clone()
    }

    /// Merges entries learned from one source (a sync, a bond): the newest
    /// copy of each peer only, the cheap checks under the lock, signatures
    /// outside it, at most `max_new_peers_per_exchange` new peers.
    pub fn merge_all(&self, entries: Vec<SignedEntry>) {
        let mut newest: HashMap<PeerId, SignedEntry> = HashMap::new();
        for entry in entries {
            match newest.entry(entry.entry.peer_id) {
                Slot::Occupied(o) if o.get().entry.version >= entry.entry.version => {}
                Slot::Occupied(mut o) => {
                    o.insert(entry);
                }
                Slot::Vacant(v) => {
                    v.insert(entry);
                }
            }
        }
        let mut new_left = self.max_new_per_exchange;
        let candidates: Vec<SignedEntry> = {
            let state = self.state();
            newest
                .into_values()
                .filter(|entry| match state.catalog.screen(entry) {
                    Screen::Reject => {
                        self.metrics.rejected.inc();
                        false
                    }
                    Screen::Ignore => false,
                    Screen::Candidate { new: false } => true,
                    Screen::Candidate { new: true } if new_left > 0 => {
                        new_left -= 1;
                        true
                    }
                    Screen::Candidate { new: true } => {
                        self.metrics.dropped.inc();
                        false
                    }
                })
                .collect()
        };
        let verified: Vec<SignedEntry> = candidates
            .into_iter()
            .filter(|entry| {
                let ok = entry.verify();
                if !ok {
                    self.metrics.rejected.inc();
                }
                ok
            })
            .collect();
        if verified.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut news = false;
        {
            let mut state = self.state();
            for entry in verified {
                match state.catalog.insert_verified(entry, now) {
                    Merge::New => {
                        self.metrics.discovered.inc();
                        news = true;
                    }
                    Merge::Changed => news = true,
                    Merge::Rejected => self.metrics.rejected.inc(),
                    Merge::Full => self.metrics.dropped.inc(),
                    Merge::Refreshed | Merge::Ignored => {}
                }
            }
        }
        if news {
            self.changes.send_modify(|n| *n += 1);
            self.push.notify_one();
        }
    }

    fn purge(&self) {
        let gone = self
            .state()
            .catalog
            .purge(Instant::now(), self.config.entry_ttl);
        if !gone.is_empty() {
            self.metrics.departed.add(gone.len() as u64);
            self.changes.send_modify(|n| *n += 1);
        }
    }

    /// Exchanges catalogs with `addr` now.
    pub async fn sync_with(&self, addr: &EndpointAddr) -> Result<(), NetError> {
        let conn = self
            .endpoint
            .connect(addr.peer_id, &addr.addrs, DISCOVERY_ALPN)
            .await?;
        let result = self.dial_exchange(&conn).await;
        if result.is_ok() {
            self.metrics.syncs.inc();
            link::close_with(&conn, close::SUCCESS, "synced");
        }
        result
    }

    async fn dial_exchange(&self, conn: &quinn::Connection) -> Result<(), NetError> {
        let (mut tx, mut rx) = link::open(conn, wire::MAX_FRAME).await?;
        send_entries(&mut tx, self.all_signed(), |entries| {
            DiscoveryMessage::Hello {
                network_id: self.network_id,
                entries,
            }
        })
        .await?;
        let reply = tokio::time::timeout(self.config.reply_timeout, async {
            match rx.recv().await? {
                DiscoveryMessage::Catalog { entries } => self.receive_more(&mut rx, entries).await,
                _ => {
                    link::close_with(conn, close::PROTOCOL_VIOLATION, "expected a catalog");
                    Err(NetError::Protocol(
                        "peer did not answer with a catalog".into(),
                    ))
                }
            }
        })
        .await
        .map_err(|_| NetError::Timeout("waiting for the peer's catalog".into()))??;
        self.merge_all(reply);
        Ok(())
    }

    /// Reads the `More` frames that follow a first frame of `entries`,
    /// until the remote finishes its side; entries beyond the cap of one
    /// exchange are dropped unread.
    async fn receive_more(
        &self,
        rx: &mut LinkReceiver,
        mut entries: Vec<SignedEntry>,
    ) -> Result<Vec<SignedEntry>, NetError> {
        while let Some(msg) = rx.recv_or_end::<DiscoveryMessage>().await? {
            let DiscoveryMessage::More { entries: more } = msg else {
                return Err(rx.violation(close::PROTOCOL_VIOLATION, "expected more entries".into()));
            };
            if entries.len() + more.len() > self.max_entries_per_exchange {
                self.metrics.dropped.add(more.len() as u64);
                break;
            }
            entries.extend(more);
        }
        Ok(entries)
    }

    /// Serves one incoming discovery connection from `peer`; returns the
    /// close code it refused with, if it did.
    pub async fn serve(&self, conn: quinn::Connection, peer: PeerId) -> Option<u32> {
        if let Err((code, e)) = self.serve_exchange(&conn, peer).await {
            log::debug!(
                "discovery sync from {:?} failed: {e}",
                conn.remote_address()
            );
            return code;
        }
        self.metrics.syncs.inc();
        let _ = tokio::time::timeout(self.config.reply_timeout, conn.closed()).await;
        None
    }

    async fn serve_exchange(
        &self,
        conn: &quinn::Connection,
        peer: PeerId,
    ) -> Result<(), (Option<u32>, NetError)> {
        let refuse = |code: u32, why: &str| {
            link::close_with(conn, code, why);
            (Some(code), NetError::Protocol(why.to_string()))
        };
        let first = tokio::time::timeout(self.config.reply_timeout, async {
            let (tx, mut rx) = link::accept(conn, wire::MAX_FRAME).await?;
            let hello = rx.recv::<DiscoveryMessage>().await?;
            let DiscoveryMessage::Hello {
                network_id,
                entries,
            } = hello
            else {
                return Ok((tx, None));
            };
            if network_id != self.network_id {
                return Ok((tx, Some((network_id, entries))));
            }
            let entries = self.receive_more(&mut rx, entries).await?;
            Ok::<_, NetError>((tx, Some((network_id, entries))))
        })
        .await;
        let (mut tx, hello) = match first {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => return Err((None, e)),
            Err(_) => return Err(refuse(close::PROTOCOL_VIOLATION, "no hello in time")),
        };
        let Some((network_id, entries)) = hello else {
            return Err(refuse(close::PROTOCOL_VIOLATION, "expected hello"));
        };
        if network_id != self.network_id {
            self.metrics.rejected.add(entries.len() as u64);
            return Err(refuse(close::DIFFERENT_NETWORK, "different network"));
        }
        // The catalog goes only to a peer that says who it is: its own
        // signed entry first.
        let introduced = entries
            .first()
            .is_some_and(|e| e.entry.peer_id == peer && e.well_formed() && e.verify());
        if !introduced {
            self.metrics.rejected.add(entries.len() as u64);
            return Err(refuse(
                close::PROTOCOL_VIOLATION,
                "hello without the sender's own entry",
            ));
        }
        self.merge_all(entries);
        send_entries(&mut tx, self.all_signed(), |entries| {
            DiscoveryMessage::Catalog { entries }
        })
        .await
        .map_err(|e| (None, e))
    }

    /// The gossip loop; runs until its task is aborted. Refreshes and purges
    /// never wait for a round of syncs; at most one round runs at a time.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.config.gossip_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut round: JoinSet<()> = JoinSet::new();
        let mut push_waiting = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    self.republish(None);
                    self.purge();
                    if round.is_empty() {
                        self.start_round(&mut round, self.periodic_targets());
                    }
                }
                _ = self.push.notified() => push_waiting = true,
                Some(_) = round.join_next(), if !round.is_empty() => {}
            }
            if push_waiting && round.is_empty() {
                push_waiting = false;
                tokio::time::sleep(PUSH_DELAY).await;
                self.start_round(&mut round, self.random_targets(self.config.push_fanout));
            }
        }
    }

    fn known_targets(&self) -> Vec<EndpointAddr> {
        self.entries()
            .into_iter()
            .map(|e| EndpointAddr {
                peer_id: e.peer_id,
                addrs: e.addrs,
            })
            .collect()
    }

    /// Up to `n` random known peers.
    fn random_targets(&self, n: usize) -> Vec<EndpointAddr> {
        let mut known = self.known_targets();
        known.shuffle(&mut rand::thread_rng());
        known.truncate(n);
        known
    }

    /// A few random known peers plus every bootstrap peer not yet known.
    fn periodic_targets(&self) -> Vec<EndpointAddr> {
        let mut known = self.random_targets(self.config.fanout);
        let unknown_bootstrap = self
            .config
            .bootstrap
            .iter()
            .filter(|b| !self.knows(&b.peer_id) && b.peer_id != self.endpoint.peer_id());
        known.extend(unknown_bootstrap.cloned());
        known
    }

    /// One bounded sync per target, run concurrently in `round`.
    fn start_round(self: &Arc<Self>, round: &mut JoinSet<()>, targets: Vec<EndpointAddr>) {
        let bound = self.config.reply_timeout + DIAL_TIMEOUT * MAX_DIALLED_ADDRS as u32;
        for target in targets {
            let me = self.clone();
            round.spawn(async move {
                match tokio::time::timeout(bound, me.sync_with(&target)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => log::debug!("discovery sync with {} failed: {e}", target.peer_id),
                    Err(_) => log::debug!("discovery sync with {} timed out", target.peer_id),
                }
            });
        }
    }

    pub fn metrics(&self) -> Vec<Sample> {
        let m = &self.metrics;
        vec![
            (
                "mosaik.discovery.catalog.size".into(),
                self.state().catalog.len() as f64,
            ),
            (
                "mosaik.discovery.peers.discovered".into(),
                m.discovered.get() as f64,
            ),
            (
                "mosaik.discovery.peers.departed".into(),
                m.departed.get() as f64,
            ),
            (
                "mosaik.discovery.catalog.syncs".into(),
                m.syncs.get() as f64,
            ),
            (
                "mosaik.discovery.entries.rejected".into(),
                m.rejected.get() as f64,
            ),
            (
                "mosaik.discovery.entries.dropped".into(),
                m.dropped.get() as f64,
            ),
        ]
    }
}

/// Sends `entries` as a first frame made by `first`, then `More` frames, and
/// finishes this side of the stream.
async fn send_entries(
    tx: &mut LinkSender,
    entries: Vec<SignedEntry>,
    first: impl FnOnce(Vec<SignedEntry>) -> DiscoveryMessage,
) -> Result<(), NetError> {
    let mut chunks = wire::chunks(entries).into_iter();
    tx.send(&first(chunks.next().unwrap_or_default())).await?;
    for entries in chunks {
        tx.send(&DiscoveryMessage::More { entries }).await?;
    }
    tx.finish();
    Ok(())
}
