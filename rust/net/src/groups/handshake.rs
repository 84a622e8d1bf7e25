//! The bond handshake on ALPN `/mosaik/groups/1`.
//!
//! The acceptor checks, in this order: a decodable `HandshakeStart` within
//! the handshake timeout (30400 / 30408), the same network (101), a group it
//! has joined (30404), no bond with the peer yet (30429), a valid proof
//! (30405). The router has already refused peers discovery does not know
//! (401). The initiator checks the acceptor's proof the same way.

use std::net::SocketAddr;
use std::sync::Arc;

use mosaik_core::PeerId;

use super::group::{Group, NewBond};
use super::proof::{proof_for, proof_matches, session_material};
use super::wire::BondMessage;
use super::Groups;
use crate::close::{self, groups as codes};
use crate::discovery::Discovery;
use crate::endpoint::GROUPS_ALPN;
use crate::error::NetError;
use crate::link::{self, LinkReceiver, LinkSender};

/// The largest handshake message accepted: a `HandshakeStart` or
/// `HandshakeEnd` naming a few thousand bonds. Bond frames get the link's
/// full limit only after the handshake.
const HANDSHAKE_MAX_FRAME: usize = 64 * 1024;

fn refuse(conn: &quinn::Connection, code: u32, why: &str) -> NetError {
    link::close_with(conn, code, why);
    NetError::Protocol(format!("bond refused ({code}): {why}"))
}

/// Dials `peer` and runs the initiator's side of the handshake.
pub async fn initiate(group: &Arc<Group>, peer: PeerId) -> Result<(), NetError> {
    let ctx = group.ctx().clone();
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
    let spec = group.spec();
    let ekm = session_material(&conn, &spec.group_id)?;
    let (mut tx, mut rx) = link::open(&conn, HANDSHAKE_MAX_FRAME).await?;
    tx.send(&BondMessage::HandshakeStart {
        network_id: ctx.network_id,
        group_id: spec.group_id,
        proof: proof_for(&spec.secret, &ekm, &ctx.local),
        bonds: group.bond_peers(),
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
        group.metrics.reject(codes::INVALID_PROOF);
        return Err(refuse(&conn, codes::INVALID_PROOF, "invalid proof"));
    }
    rx.set_max_frame(ctx.max_frame);
    group.install(NewBond {
        peer,
        initiator: ctx.local,
        conn,
        tx,
        rx,
        their_bonds: bonds,
    });
    Ok(())
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

/// The acceptor's side: checks the handshake and installs the bond;
/// returns the close code it refused with, if it did.
pub async fn accept(groups: &Groups, conn: quinn::Connection, peer: PeerId) -> Option<u32> {
    let first = tokio::time::timeout(groups.handshake_timeout(), async {
        let (tx, mut rx) = link::accept(&conn, HANDSHAKE_MAX_FRAME).await?;
        let msg = rx
            .recv_or_close::<BondMessage>(codes::INVALID_HANDSHAKE)
            .await?;
        Ok::<_, NetError>((tx, rx, msg))
    })
    .await;
    let result = match first {
        Err(_) => Err(codes::TIMEOUT),
        Ok(Err(NetError::ClosedByPeer { .. })) => return None,
        Ok(Err(e)) => {
            log::debug!("bond handshake from {peer} failed: {e}");
            Err(codes::INVALID_HANDSHAKE)
        }
        Ok(Ok((tx, rx, msg))) => check_start(groups, &conn, peer, msg).map(|g| (g, tx, rx)),
    };
    match result {
        Ok((group, tx, rx)) => {
            finish_accept(group, conn, peer, tx, rx).await;
            None
        }
        Err(code) => {
            groups.metrics.reject(code);
            link::close_with(&conn, code, super::metrics::reason_name(code));
            Some(code)
        }
    }
}

/// The acceptor's checks after the first message; the close code on refusal.
fn check_start(
    groups: &Groups,
    conn: &quinn::Connection,
    peer: PeerId,
    msg: BondMessage,
) -> Result<(Arc<Group>, Vec<PeerId>), u32> {
    let BondMessage::HandshakeStart {
        network_id,
        group_id,
        proof,
        bonds,
    } = msg
    else {
        return Err(codes::INVALID_HANDSHAKE);
    };
    if network_id != groups.ctx().network_id {
        return Err(close::DIFFERENT_NETWORK);
    }
    let group = groups
        .get(&group_id)
        .filter(|g| !g.has_left())
        .ok_or(codes::GROUP_NOT_FOUND)?;
    if group.is_bonded(&peer) {
        return Err(codes::ALREADY_BONDED);
    }
    let ekm = session_material(conn, &group_id).map_err(|_| codes::INVALID_PROOF)?;
    if !proof_matches(&group.spec().secret, &ekm, &peer, &proof) {
        return Err(codes::INVALID_PROOF);
    }
    groups.ctx().endpoint.reached(peer, conn.remote_address());
    Ok((group, bonds))
}

async fn finish_accept(
    (group, their_bonds): (Arc<Group>, Vec<PeerId>),
    conn: quinn::Connection,
    peer: PeerId,
    mut tx: LinkSender,
    mut rx: LinkReceiver,
) {
    let Ok(ekm) = session_material(&conn, &group.id()) else {
        return;
    };
    let end = BondMessage::HandshakeEnd {
        proof: proof_for(&group.spec().secret, &ekm, &group.local()),
        bonds: group.bond_peers(),
    };
    if tx.send(&end).await.is_err() {
        return;
    }
    rx.set_max_frame(group.ctx().max_frame);
    group.install(NewBond {
        peer,
        initiator: peer,
        conn,
        tx,
        rx,
        their_bonds,
    });
}
