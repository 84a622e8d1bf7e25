//! The bond handshake on ALPN `/mosaik/groups/1`.
//!
//! The acceptor checks, in this order: a decodable `HandshakeStart` within
//! the handshake timeout (30400 / 30408), the same network (101), a group it
//! has joined (30404), no bond with the peer yet (30429), a valid proof
//! (30405); the group checks are the registry's (`Groups::accept`). The
//! router has already refused peers discovery does not know (401). The
//! initiator checks the acceptor's proof the same way. A completed
//! handshake yields a [`NewBond`] for the group to install.

use std::net::SocketAddr;

use mosaik_core::{GroupId, NetworkId, PeerId};

use super::ctx::{GroupSpec, GroupsCtx};
use super::metrics::BondMetrics;
use super::proof::{proof_for, proof_matches, session_material};
use super::wire::{BondMessage, Proof};
use crate::close::groups as codes;
use crate::discovery::Discovery;
use crate::endpoint::GROUPS_ALPN;
use crate::error::NetError;
use crate::link::{self, LinkReceiver, LinkSender};

/// A bond handed over by a completed handshake.
pub struct NewBond {
    pub peer: PeerId,
    pub initiator: PeerId,
    pub conn: quinn::Connection,
    pub tx: LinkSender,
    pub rx: LinkReceiver,
    pub their_bonds: Vec<PeerId>,
}

/// An initiator's `HandshakeStart`, as the acceptor read it.
pub struct Start {
    pub network_id: NetworkId,
    pub group_id: GroupId,
    pub proof: Proof,
    pub bonds: Vec<PeerId>,
    tx: LinkSender,
    rx: LinkReceiver,
}

/// The largest handshake message accepted: a `HandshakeStart` or
/// `HandshakeEnd` naming a few thousand bonds. Bond frames get the link's
/// full limit only after the handshake.
const HANDSHAKE_MAX_FRAME: usize = 64 * 1024;

fn refuse(conn: &quinn::Connection, code: u32, why: &str) -> NetError {
    link::close_with(conn, code, why);
    NetError::Protocol(format!("bond refused ({code}): {why}"))
}

/// Dials `peer` and runs the initiator's side of the handshake, telling it
/// our `bonds`.
pub async fn initiate(
    ctx: &GroupsCtx,
    spec: &GroupSpec,
    metrics: &BondMetrics,
    peer: PeerId,
    bonds: Vec<PeerId>,
) -> Result<NewBond, NetError> {
    let entry = ctx
        .discovery
        .entry(&peer)
        .ok_or_else(|| NetError::Protocol(format!("{peer} is not in the catalog")))?;
    // A peer that restarted elsewhere publishes new addresses: give up on
    // the old ones at once rather than after the dial timeout.
    let conn = tokio::select! {
        conn = ctx.endpoint.connect(peer, &entry.addrs, GROUPS_ALPN) => conn?,
        () = addresses_change(&ctx.discovery, peer, &entry.addrs) => {
            return Err(NetError::Connect {
                peer: peer.to_string(),
                reason: "its addresses changed while dialling".into(),
            });
        }
    };
    let ekm = session_material(&conn, &spec.group_id)?;
    let (mut tx, mut rx) = link::open(&conn, HANDSHAKE_MAX_FRAME).await?;
    tx.send(&BondMessage::HandshakeStart {
        network_id: ctx.network_id,
        group_id: spec.group_id,
        proof: proof_for(&spec.secret, &ekm, &ctx.local),
        bonds,
    })
    .await?;
    let reply = tokio::time::timeout(
        spec.handshake_timeout,
        rx.recv_or_close::<BondMessage>(codes::INVALID_HANDSHAKE),
    )
    .await;
    let reply = match reply {
        Err(_) => return Err(refuse(&conn, codes::TIMEOUT, "no handshake reply in time")),
        Ok(reply) => reply?,
    };
    let BondMessage::HandshakeEnd { proof, bonds } = reply else {
        return Err(refuse(
            &conn,
            codes::INVALID_HANDSHAKE,
            "expected HandshakeEnd",
        ));
    };
    if !proof_matches(&spec.secret, &ekm, &peer, &proof) {
        metrics.reject(codes::INVALID_PROOF);
        return Err(refuse(&conn, codes::INVALID_PROOF, "invalid proof"));
    }
    rx.set_max_frame(bonded_frame_limit(ctx, spec));
    Ok(NewBond {
        peer,
        initiator: ctx.local,
        conn,
        tx,
        rx,
        their_bonds: bonds,
    })
}

/// Resolves when the catalog shows `peer` at other addresses than `addrs`.
async fn addresses_change(discovery: &Discovery, peer: PeerId, addrs: &[SocketAddr]) {
    let mut changes = discovery.subscribe();
    while changes.changed().await.is_ok() {
        if discovery.entry(&peer).is_some_and(|e| e.addrs != addrs) {
            return;
        }
    }
    std::future::pending::<()>().await;
}

/// The acceptor's first step: the initiator's `HandshakeStart` within
/// `timeout`. `Err(None)` when the peer closed quietly, else the close
/// code to refuse with.
pub async fn read_start(
    conn: &quinn::Connection,
    peer: PeerId,
    timeout: std::time::Duration,
) -> Result<Start, Option<u32>> {
    let first = tokio::time::timeout(timeout, async {
        let (tx, mut rx) = link::accept(conn, HANDSHAKE_MAX_FRAME).await?;
        let msg = rx
            .recv_or_close::<BondMessage>(codes::INVALID_HANDSHAKE)
            .await?;
        Ok::<_, NetError>((tx, rx, msg))
    })
    .await;
    match first {
        Err(_) => Err(Some(codes::TIMEOUT)),
        Ok(Err(NetError::ClosedByPeer { .. })) => Err(None),
        Ok(Err(e)) => {
            log::debug!("bond handshake from {peer} failed: {e}");
            Err(Some(codes::INVALID_HANDSHAKE))
        }
        Ok(Ok((
            tx,
            rx,
            BondMessage::HandshakeStart {
                network_id,
                group_id,
                proof,
                bonds,
            },
        ))) => Ok(Start {
            network_id,
            group_id,
            proof,
            bonds,
            tx,
            rx,
        }),
        Ok(Ok(_)) => Err(Some(codes::INVALID_HANDSHAKE)),
    }
}

/// Whether `start` proves that `peer` holds the secret of `spec`'s group.
pub fn start_proves(
    conn: &quinn::Connection,
    spec: &GroupSpec,
    peer: PeerId,
    start: &Start,
) -> bool {
    session_material(conn, &spec.group_id)
        .is_ok_and(|ekm| proof_matches(&spec.secret, &ekm, &peer, &start.proof))
}

/// The acceptor's last step: answers with our proof and `bonds`; the bond,
/// unless the connection failed meanwhile.
pub async fn answer(
    ctx: &GroupsCtx,
    spec: &GroupSpec,
    conn: quinn::Connection,
    peer: PeerId,
    start: Start,
    bonds: Vec<PeerId>,
) -> Option<NewBond> {
    let ekm = session_material(&conn, &spec.group_id).ok()?;
    let Start {
        mut tx,
        mut rx,
        bonds: their_bonds,
        ..
    } = start;
    let end = BondMessage::HandshakeEnd {
        proof: proof_for(&spec.secret, &ekm, &ctx.local),
        bonds,
    };
    tx.send(&end).await.ok()?;
    rx.set_max_frame(bonded_frame_limit(ctx, spec));
    Some(NewBond {
        peer,
        initiator: peer,
        conn,
        tx,
        rx,
        their_bonds,
    })
}

/// The frame limit of a bonded link: room for the group's largest message
/// (see `ConsensusConfig::max_message_bytes`), never below the network's.
fn bonded_frame_limit(ctx: &GroupsCtx, spec: &GroupSpec) -> usize {
    spec.consensus.max_message_bytes().max(ctx.max_frame)
}
