//! `Network`: one node on a mosaik network. Owns the endpoint, the
//! discovery service and the router that admits incoming connections (see
//! `admission`) and hands them to the protocol of their ALPN.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mosaik_core::{NetworkId, PeerId};

use crate::addr::EndpointAddr;
use crate::admission::{Admission, Decision, PendingSlot};
use crate::close;
use crate::discovery::{Discovery, DiscoveryConfig};
use crate::endpoint::{self, Accepted, Endpoint, DISCOVERY_ALPN, GROUPS_ALPN};
use crate::error::NetError;
use crate::groups::{Group, GroupSpec, Groups, GroupsCtx, WorkerHandle, WorkerSetup};
use crate::identity::Identity;
use crate::limits::Limits;
use crate::link;
use crate::metrics::Sample;
use crate::tasks::TaskSet;

/// Everything needed to start a `Network`.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    pub name: String,
    pub secret: Option<[u8; 32]>,
    /// The first address is bound; all are advertised unless `advertise`
    /// names what to advertise instead.
    pub addrs: Vec<SocketAddr>,
    /// The addresses peers dial, when they differ from the bound ones (a
    /// wildcard bind, NAT): advertised instead of `addrs`. Empty: `addrs`.
    pub advertise: Vec<SocketAddr>,
    pub handshake_timeout: Duration,
    pub discovery: DiscoveryConfig,
    pub limits: Limits,
}

impl NetworkConfig {
    pub fn new(name: impl Into<String>) -> Self {
        NetworkConfig {
            name: name.into(),
            secret: None,
            addrs: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            advertise: Vec::new(),
            handshake_timeout: Duration::from_secs(2),
            discovery: DiscoveryConfig::default(),
            limits: Limits::default(),
        }
    }

    pub fn validate(&self) -> Result<(), NetError> {
        if self.name.is_empty() {
            return Err(NetError::Config(
                "invalid network name \"\": it must be a non-empty string".into(),
            ));
        }
        if self.addrs.is_empty() {
            return Err(NetError::Config(
                "no address to bind: addresses is empty".into(),
            ));
        }
        if let Some(bad) = self
            .advertise
            .iter()
            .find(|a| a.ip().is_unspecified() || a.port() == 0)
        {
            return Err(NetError::Config(format!(
                "cannot advertise {bad}: peers need an address and a port they can dial"
            )));
        }
        let d = &self.discovery;
        if d.gossip_interval.is_zero() || d.entry_ttl <= d.gossip_interval {
            return Err(NetError::Config(format!(
                "invalid discovery timing: gossip interval {:?} must be positive and below the entry ttl {:?}",
                d.gossip_interval, d.entry_ttl
            )));
        }
        if self.handshake_timeout.is_zero() {
            return Err(NetError::Config(
                "invalid handshake_timeout 0: must be positive".into(),
            ));
        }
        self.limits.validate()
    }

    pub fn network_id(&self) -> NetworkId {
        NetworkId::from_text(&self.name)
    }
}

/// The parts of a started network; dropped as a whole on close so that the
/// socket is released.
struct Running {
    endpoint: Arc<Endpoint>,
    admission: Arc<Admission>,
    discovery: Arc<Discovery>,
    groups: Arc<Groups>,
    tasks: Arc<TaskSet>,
}

pub struct Network {
    peer_id: PeerId,
    network_id: NetworkId,
    local: EndpointAddr,
    running: Mutex<Option<Arc<Running>>>,
}

impl Network {
    /// Binds and starts a node; must run inside a tokio runtime.
    pub async fn start(config: NetworkConfig) -> Result<Arc<Network>, NetError> {
        config.validate()?;
        let identity = Arc::new(match config.secret {
            Some(seed) => Identity::from_seed(seed)?,
            None => Identity::generate()?,
        });
        let endpoint = Arc::new(
            Endpoint::bind(
                identity,
                config.addrs[0],
                &config.addrs[1..],
                &config.limits,
            )?
            .advertising(&config.advertise),
        );
        let network_id = config.network_id();
        let discovery = Discovery::new(
            endpoint.clone(),
            network_id,
            config.discovery.clone(),
            &config.limits,
        );
        let tasks = Arc::new(TaskSet::new(tokio::runtime::Handle::current()));
        let groups = Arc::new(Groups::new(
            GroupsCtx {
                local: endpoint.peer_id(),
                network_id,
                endpoint: endpoint.clone(),
                discovery: discovery.clone(),
                tasks: tasks.clone(),
                max_frame: config.discovery.max_frame,
            },
            config.handshake_timeout,
        ));
        let running = Arc::new(Running {
            endpoint: endpoint.clone(),
            admission: Admission::new(config.limits.clone()),
            discovery: discovery.clone(),
            groups,
            tasks,
        });
        for peer in &config.discovery.bootstrap {
            for addr in &peer.addrs {
                endpoint.reached(peer.peer_id, *addr);
            }
        }
        running.tasks.spawn(discovery.run());
        running.tasks.spawn(route(Arc::downgrade(&running)));
        Ok(Arc::new(Network {
            peer_id: endpoint.peer_id(),
            network_id,
            local: EndpointAddr {
                peer_id: endpoint.peer_id(),
                addrs: endpoint.advertised().to_vec(),
            },
            running: Mutex::new(Some(running)),
        }))
    }

    fn running(&self) -> Result<Arc<Running>, NetError> {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(NetError::Closed)
    }

    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    pub fn network_id(&self) -> NetworkId {
        self.network_id
    }

    pub fn local_addr(&self) -> &EndpointAddr {
        &self.local
    }

    pub fn is_closed(&self) -> bool {
        self.running().is_err()
    }

    pub fn discovery(&self) -> Result<Arc<Discovery>, NetError> {
        Ok(self.running()?.discovery.clone())
    }

    pub fn groups(&self) -> Result<Arc<Groups>, NetError> {
        Ok(self.running()?.groups.clone())
    }

    /// Joins a group's bond mesh, without consensus (once per group id).
    pub fn join(&self, spec: GroupSpec) -> Result<Arc<Group>, NetError> {
        self.groups()?.join(spec)
    }

    /// Joins a group and runs consensus on it with `setup`'s state machine.
    pub fn join_consensus(
        &self,
        spec: GroupSpec,
        setup: WorkerSetup,
    ) -> Result<(Arc<Group>, WorkerHandle), NetError> {
        self.groups()?.join_consensus(spec, setup)
    }

    /// The endpoint, for tools and tests that speak a protocol by hand.
    pub fn endpoint(&self) -> Result<Arc<Endpoint>, NetError> {
        Ok(self.running()?.endpoint.clone())
    }

    pub async fn sync_with(&self, addr: &EndpointAddr) -> Result<(), NetError> {
        if addr.peer_id == self.peer_id {
            return Err(NetError::Config(format!("cannot sync with self ({addr})")));
        }
        let discovery = self.discovery()?;
        discovery.sync_with(addr).await
    }

    pub fn metrics(&self) -> Vec<Sample> {
        let Ok(running) = self.running() else {
            return Vec::new();
        };
        let mut out = running.discovery.metrics();
        out.extend(running.admission.metrics());
        out.extend(running.groups.metrics());
        out
    }

    /// Stops every task, closes all connections with 204 and releases the
    /// socket. Closing twice is a no-op.
    pub async fn close(&self) {
        let running = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(running) = running {
            running.groups.leave_all().await;
            running.tasks.shutdown().await;
            running.endpoint.close(close::GRACEFUL_SHUTDOWN).await;
            let bound = running.endpoint.bound();
            drop(running);
            endpoint::wait_until_released(bound).await;
        }
    }
}

/// Accepts connections until the endpoint closes: admission decides on
/// each attempt before any cryptography, then each admitted one is handled
/// in its own task.
async fn route(running: std::sync::Weak<Running>) {
    loop {
        let Some(endpoint) = running.upgrade().map(|r| r.endpoint.clone()) else {
            return;
        };
        let Some(incoming) = endpoint.accept().await else {
            return;
        };
        drop(endpoint);
        let Some(r) = running.upgrade() else { return };
        let from = incoming.remote_address().ip();
        let mut slot = match r.admission.admit(from, incoming.remote_address_validated()) {
            Decision::Admit(slot) => slot,
            Decision::Retry => {
                if incoming.retry().is_err() {
                    log::debug!("incoming connection from {from}: retry refused");
                }
                continue;
            }
            Decision::Refuse => {
                incoming.refuse();
                continue;
            }
            Decision::Ignore => {
                incoming.ignore();
                continue;
            }
        };
        let weak = running.clone();
        let endpoint = r.endpoint.clone();
        r.tasks.spawn(async move {
            match endpoint.complete(incoming).await {
                Ok(accepted) => {
                    slot.handshake_done();
                    dispatch(weak, accepted, slot).await;
                }
                Err(e) => log::debug!("incoming connection failed: {e}"),
            }
        });
    }
}

/// Hands `accepted` to its protocol; the pending slot is held until the
/// protocol is done with it (an exchange served, a bond installed or
/// refused), and a probing refusal is charged to the remote's address.
async fn dispatch(running: std::sync::Weak<Running>, accepted: Accepted, slot: PendingSlot) {
    let Some((discovery, groups, admission)) = running
        .upgrade()
        .map(|r| (r.discovery.clone(), r.groups.clone(), r.admission.clone()))
    else {
        return;
    };
    let from = accepted.conn.remote_address().ip();
    let refused = match accepted.alpn.as_slice() {
        DISCOVERY_ALPN => discovery.serve(accepted.conn, accepted.peer).await,
        GROUPS_ALPN if !discovery.knows(&accepted.peer) => {
            groups.reject(close::UNKNOWN_PEER);
            link::close_with(&accepted.conn, close::UNKNOWN_PEER, "unknown peer");
            Some(close::UNKNOWN_PEER)
        }
        GROUPS_ALPN => groups.accept(accepted.conn, accepted.peer).await,
        _ => {
            link::close_with(&accepted.conn, close::INVALID_ALPN, "unsupported protocol");
            Some(close::INVALID_ALPN)
        }
    };
    drop(slot);
    if let Some(code) = refused {
        admission.charge_refusal(from, code);
    }
}
