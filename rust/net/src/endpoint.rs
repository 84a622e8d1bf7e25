//! One QUIC endpoint per `Network`: binds the socket, dials peers by
//! `PeerId` (through the dial guard) and accepts authenticated connections
//! tagged with their ALPN. The transport allows only the one stream per
//! connection the protocols use, with a receive window of about a frame.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mosaik_core::PeerId;

use crate::dialing::{DialGuard, Dialled, MAX_DIALLED_ADDRS};
use crate::error::NetError;
use crate::identity::Identity;
use crate::limits::Limits;
use crate::link::{connection_error, DEFAULT_MAX_FRAME};
use crate::tls;

/// ALPN of group bonds.
pub const GROUPS_ALPN: &[u8] = b"/mosaik/groups/1";
/// ALPN of peer discovery.
pub const DISCOVERY_ALPN: &[u8] = b"/mosaik/discovery/2";

/// How long one dial attempt to one address may take.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(3);

/// Bytes a peer may send on a stream (and on a connection, plus slack for
/// control frames) before this side reads them: a quarter of the largest
/// frame, which keeps loopback and LAN links at full speed while an unread
/// connection pins little memory.
const RECEIVE_WINDOW: u32 = (DEFAULT_MAX_FRAME / 4) as u32;
/// Connection attempts quinn buffers before the router sees them.
const MAX_INCOMING: usize = 1024;

/// An authenticated incoming connection.
pub struct Accepted {
    pub conn: quinn::Connection,
    pub peer: PeerId,
    pub alpn: Vec<u8>,
}

pub struct Endpoint {
    quic: quinn::Endpoint,
    bound: SocketAddr,
    identity: Arc<Identity>,
    transport: Arc<quinn::TransportConfig>,
    advertised: Vec<SocketAddr>,
    dials: DialGuard,
}

fn transport_config() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    // Discovery and bonds each use one bidirectional stream per connection,
    // opened by the dialer; nothing else is read, so nothing else is allowed.
    t.max_concurrent_bidi_streams(quinn::VarInt::from_u32(1));
    t.max_concurrent_uni_streams(quinn::VarInt::from_u32(0));
    t.stream_receive_window(quinn::VarInt::from_u32(RECEIVE_WINDOW));
    t.receive_window(quinn::VarInt::from_u32(RECEIVE_WINDOW + 64 * 1024));
    t.max_idle_timeout(Some(quinn::IdleTimeout::from(quinn::VarInt::from_u32(
        30_000,
    ))));
    t.keep_alive_interval(Some(Duration::from_secs(5)));
    // Peers are mostly near; the default 333 ms makes a connection that is
    // closed before its first round trip linger for seconds.
    t.initial_rtt(Duration::from_millis(50));
    Arc::new(t)
}

impl Endpoint {
    /// Binds `bind`; `extra` are further addresses to advertise. An
    /// unspecified bind IP is advertised as loopback.
    pub fn bind(
        identity: Arc<Identity>,
        bind: SocketAddr,
        extra: &[SocketAddr],
        limits: &Limits,
    ) -> Result<Self, NetError> {
        let transport = transport_config();
        let mut server =
            tls::server_config(&identity, &[GROUPS_ALPN, DISCOVERY_ALPN], transport.clone())?;
        server.max_incoming(MAX_INCOMING);
        let quic = quinn::Endpoint::server(server, bind)
            .map_err(|e| NetError::Config(format!("cannot bind {bind}: {e}")))?;
        let bound = quic.local_addr()?;
        let mut local = bound;
        if local.ip().is_unspecified() {
            local.set_ip(match local {
                SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
            });
        }
        let mut advertised = vec![local];
        advertised.extend(extra.iter().filter(|a| **a != local));
        Ok(Endpoint {
            quic,
            bound,
            identity,
            transport,
            advertised,
            dials: DialGuard::new(limits),
        })
    }

    /// Advertises exactly `addrs` instead of the bound addresses (none:
    /// unchanged), for a node whose peers reach it at other addresses than
    /// it binds (a wildcard bind, NAT).
    pub fn advertising(mut self, addrs: &[SocketAddr]) -> Self {
        if !addrs.is_empty() {
            self.advertised = addrs.to_vec();
        }
        self
    }

    pub fn peer_id(&self) -> PeerId {
        self.identity.peer_id()
    }

    pub fn identity(&self) -> &Arc<Identity> {
        &self.identity
    }

    pub fn advertised(&self) -> &[SocketAddr] {
        &self.advertised
    }

    /// Dials `peer` at each of its first addresses in turn until one
    /// handshake succeeds; the dial guard may hold some addresses back.
    pub async fn connect(
        &self,
        peer: PeerId,
        addrs: &[SocketAddr],
        alpn: &[u8],
    ) -> Result<quinn::Connection, NetError> {
        let mut last = String::from("no addresses");
        for addr in addrs.iter().take(MAX_DIALLED_ADDRS) {
            let _permit = match self.dials.permit(peer, *addr).await {
                Ok(permit) => permit,
                Err(why) => {
                    last = format!("{addr}: {why}");
                    continue;
                }
            };
            let result = self.connect_one(peer, *addr, alpn).await;
            let how = match &result {
                Ok(_) => Dialled::Reached,
                Err(NetError::Timeout(_)) => Dialled::Silent,
                Err(_) => Dialled::Answered,
            };
            self.dials.outcome(peer, *addr, how);
            match result {
                Ok(conn) => return Ok(conn),
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(NetError::Connect {
            peer: peer.to_string(),
            reason: last,
        })
    }

    async fn connect_one(
        &self,
        peer: PeerId,
        addr: SocketAddr,
        alpn: &[u8],
    ) -> Result<quinn::Connection, NetError> {
        let config = tls::client_config(&self.identity, peer, alpn, self.transport.clone())?;
        let connecting = self
            .quic
            .connect_with(config, addr, tls::SERVER_NAME)
            .map_err(|e| NetError::ConnectionLost(e.to_string()))?;
        match tokio::time::timeout(DIAL_TIMEOUT, connecting).await {
            Ok(conn) => conn.map_err(connection_error),
            Err(_) => Err(NetError::Timeout(format!("dialling {addr}"))),
        }
    }

    /// The next incoming connection attempt; `None` once closed.
    pub async fn accept(&self) -> Option<quinn::Incoming> {
        self.quic.accept().await
    }

    /// Completes an incoming handshake and names the peer and protocol.
    pub async fn complete(&self, incoming: quinn::Incoming) -> Result<Accepted, NetError> {
        let conn = tokio::time::timeout(DIAL_TIMEOUT, incoming)
            .await
            .map_err(|_| NetError::Timeout("incoming handshake".into()))?
            .map_err(connection_error)?;
        let alpn = conn
            .handshake_data()
            .and_then(|d| d.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
            .and_then(|d| d.protocol)
            .unwrap_or_default();
        let peer = tls::remote_peer_id(&conn)
            .ok_or_else(|| NetError::Tls("remote presented no usable certificate".into()))?;
        Ok(Accepted { conn, peer, alpn })
    }

    /// `peer` proved itself from `addr` (an accepted hello or bond): dials
    /// of that pair skip the guard's budget and long back-off.
    pub fn reached(&self, peer: PeerId, addr: SocketAddr) {
        self.dials.reached(peer, addr);
    }

    /// The socket address actually bound.
    pub fn bound(&self) -> SocketAddr {
        self.bound
    }

    /// Closes every connection with `code` and gives the close frames a
    /// moment to leave. The socket is released once the last handle of the
    /// endpoint and its connections is dropped.
    pub async fn close(&self, code: u32) {
        self.quic
            .close(quinn::VarInt::from_u32(code), b"network closed");
        let _ = tokio::time::timeout(Duration::from_millis(250), self.quic.wait_idle()).await;
    }
}

/// Waits (bounded) until `addr` can be bound again: quinn's driver releases
/// the socket on its own task shortly after the last endpoint handle goes.
pub async fn wait_until_released(addr: SocketAddr) {
    for _ in 0..400 {
        if std::net::UdpSocket::bind(addr).is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    log::warn!("socket {addr} still bound after close");
}
