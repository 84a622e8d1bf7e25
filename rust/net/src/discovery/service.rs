//! The discovery service of one node: serves incoming syncs, dials syncs,
//! and runs the gossip loop.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mosaik_core::{GroupId, NetworkId, PeerId};
use rand::seq::SliceRandom;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

use super::catalog::{Catalog, Merge};
use super::entry::{PeerEntry, SignedEntry};
use super::wire::DiscoveryMessage;
use crate::addr::EndpointAddr;
use crate::close;
use crate::endpoint::{Endpoint, DIAL_TIMEOUT, DISCOVERY_ALPN};
use crate::error::NetError;
use crate::link;
use crate::metrics::{Counter, Sample};

/// Addresses of one peer tried per gossip sync; the rest are ignored.
const MAX_DIALLED_ADDRS: usize = 2;

/// Settings of the discovery service.
#[derive(Clone, Debug)]
pub struct DiscoveryConfig {
    /// Period of the own entry's refresh and of random syncs.
    pub gossip_interval: Duration,
    /// An entry not refreshed for this long is purged.
    pub entry_ttl: Duration,
    /// Random peers synced with every gossip interval.
    pub fanout: usize,
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
}

struct State {
    catalog: Catalog,
    own: SignedEntry,
}

pub struct Discovery {
    endpoint: Arc<Endpoint>,
    network_id: NetworkId,
    config: DiscoveryConfig,
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
            catalog: Catalog::new(endpoint.peer_id(), network_id),
            own,
        };
        Arc::new(Discovery {
            endpoint,
            network_id,
            config,
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

    /// Announces the groups this node has joined.
    pub fn set_groups(&self, groups: Vec<GroupId>) {
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

    /// Merges entries learned from any source (syncs, bonds).
    pub fn merge_all(&self, entries: Vec<SignedEntry>) {
        let now = Instant::now();
        let mut news = false;
        {
            let mut state = self.state();
            for entry in entries {
                match state.catalog.merge(entry, now) {
                    Merge::New => {
                        self.metrics.discovered.inc();
                        news = true;
                    }
                    Merge::Changed => news = true,
                    Merge::Rejected => self.metrics.rejected.inc(),
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
        let (mut tx, mut rx) = link::open(conn, self.config.max_frame).await?;
        let hello = DiscoveryMessage::Hello {
            network_id: self.network_id,
            entries: self.all_signed(),
        };
        tx.send(&hello).await?;
        tx.finish();
        let reply = tokio::time::timeout(self.config.reply_timeout, rx.recv())
            .await
            .map_err(|_| NetError::Timeout("waiting for the peer's catalog".into()))??;
        match reply {
            DiscoveryMessage::Catalog { entries } => {
                self.merge_all(entries);
                Ok(())
            }
            DiscoveryMessage::Hello { .. } => {
                link::close_with(conn, close::PROTOCOL_VIOLATION, "expected a catalog");
                Err(NetError::Protocol("peer answered hello with hello".into()))
            }
        }
    }

    /// Serves one incoming discovery connection.
    pub async fn serve(&self, conn: quinn::Connection) {
        if let Err(e) = self.serve_exchange(&conn).await {
            log::debug!(
                "discovery sync from {:?} failed: {e}",
                conn.remote_address()
            );
            return;
        }
        self.metrics.syncs.inc();
        let _ = tokio::time::timeout(self.config.reply_timeout, conn.closed()).await;
    }

    async fn serve_exchange(&self, conn: &quinn::Connection) -> Result<(), NetError> {
        let first = tokio::time::timeout(self.config.reply_timeout, async {
            let (tx, mut rx) = link::accept(conn, self.config.max_frame).await?;
            Ok::<_, NetError>((tx, rx.recv::<DiscoveryMessage>().await?))
        })
        .await;
        let (mut tx, hello) = match first {
            Ok(result) => result?,
            Err(_) => {
                link::close_with(conn, close::PROTOCOL_VIOLATION, "no hello in time");
                return Err(NetError::Timeout("waiting for hello".into()));
            }
        };
        let DiscoveryMessage::Hello {
            network_id,
            entries,
        } = hello
        else {
            link::close_with(conn, close::PROTOCOL_VIOLATION, "expected hello");
            return Err(NetError::Protocol("first message was not hello".into()));
        };
        if network_id != self.network_id {
            self.metrics.rejected.add(entries.len() as u64);
            link::close_with(conn, close::DIFFERENT_NETWORK, "different network");
            return Err(NetError::Protocol(format!(
                "peer is on network {network_id}"
            )));
        }
        self.merge_all(entries);
        let reply = DiscoveryMessage::Catalog {
            entries: self.all_signed(),
        };
        tx.send(&reply).await?;
        tx.finish();
        Ok(())
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
                tokio::time::sleep(Duration::from_millis(5)).await;
                self.start_round(&mut round, self.known_targets());
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

    /// A few random known peers plus every bootstrap peer not yet known.
    fn periodic_targets(&self) -> Vec<EndpointAddr> {
        let mut known = self.known_targets();
        known.shuffle(&mut rand::thread_rng());
        known.truncate(self.config.fanout);
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
        for mut target in targets {
            target.addrs.truncate(MAX_DIALLED_ADDRS);
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
        ]
    }
}
