//! The life of one bond: heartbeats, the messages it carries, and its end
//! (departure, silence, or a closed connection).

use std::sync::Arc;
use std::time::Duration;

use mosaik_core::PeerId;
use rand::Rng;
use tokio::sync::mpsc;

use super::group::Group;
use super::wire::BondMessage;
use crate::close;
use crate::error::NetError;
use crate::link::{self, encode_frame, LinkReceiver, LinkSender};

/// What the group asks a bond task to send.
pub enum Outgoing {
    Message(BondMessage),
    /// Send `Departure`, then close.
    Depart,
}

/// Why a bond ended.
enum End {
    Departed,
    Silent,
    Lost,
    Leaving,
    /// The peer sent something a bond never carries.
    Violation,
}

fn next_tick(interval: Duration, jitter: Duration) -> Duration {
    let cut = if jitter.is_zero() {
        Duration::ZERO
    } else {
        rand::thread_rng().gen_range(Duration::ZERO..jitter)
    };
    interval.saturating_sub(cut).max(Duration::from_millis(1))
}

/// Runs the bond with `peer` until it ends, then removes it from the group.
pub async fn run(
    group: Arc<Group>,
    peer: PeerId,
    generation: u64,
    conn: quinn::Connection,
    (mut tx, rx): (LinkSender, LinkReceiver),
    mut out: mpsc::UnboundedReceiver<Outgoing>,
) {
    let (in_tx, mut inbox) = mpsc::unbounded_channel();
    let reader = read_into(group.clone(), peer, rx, in_tx);
    tokio::pin!(reader);
    let driver = drive(&group, peer, &mut tx, &mut inbox, &mut out);
    tokio::pin!(driver);
    let mut reading = true;
    // The driver sees what the reader queued before it stopped, then None.
    let end = loop {
        tokio::select! {
            end = &mut driver => break end,
            () = &mut reader, if reading => reading = false,
        }
    };
    let code = match end {
        End::Departed | End::Leaving => close::GRACEFUL_SHUTDOWN,
        End::Silent => close::groups::TIMEOUT,
        End::Lost => close::CANCELLED,
        End::Violation => close::PROTOCOL_VIOLATION,
    };
    link::close_with(&conn, code, "bond ended");
    group.remove(&peer, generation, matches!(end, End::Departed));
}

/// Reads frames into `inbox` until the stream fails or ends.
async fn read_into(
    group: Arc<Group>,
    peer: PeerId,
    mut rx: LinkReceiver,
    inbox: mpsc::UnboundedSender<BondMessage>,
) {
    loop {
        match rx.recv::<BondMessage>().await {
            Ok(msg) => {
                group.metrics.record_received(rx.last_frame_len());
                if inbox.send(msg).is_err() {
                    return;
                }
            }
            Err(e) => return log::debug!("bond with {peer} stopped reading: {e}"),
        }
    }
}

async fn send(group: &Group, tx: &mut LinkSender, msg: &BondMessage) -> Result<(), NetError> {
    let frame = encode_frame(msg)?;
    tx.send_frame(&frame).await?;
    group.metrics.record_sent(frame.len());
    Ok(())
}

async fn drive(
    group: &Arc<Group>,
    peer: PeerId,
    tx: &mut LinkSender,
    inbox: &mut mpsc::UnboundedReceiver<BondMessage>,
    out: &mut mpsc::UnboundedReceiver<Outgoing>,
) -> End {
    let consensus = &group.spec().consensus;
    let mut missed = 0u32;
    let tick = tokio::time::sleep(next_tick(
        consensus.heartbeat_interval,
        consensus.heartbeat_jitter,
    ));
    tokio::pin!(tick);
    loop {
        tokio::select! {
            msg = inbox.recv() => {
                let Some(msg) = msg else { return End::Lost };
                missed = 0;
                match handle(group, peer, msg) {
                    Reply::Nothing => {}
                    Reply::Send(reply) => if send(group, tx, &reply).await.is_err() { return End::Lost },
                    Reply::End(end) => return end,
                }
            }
            cmd = out.recv() => match cmd {
                Some(Outgoing::Message(msg)) => if send(group, tx, &msg).await.is_err() { return End::Lost },
                Some(Outgoing::Depart) | None => {
                    let _ = send(group, tx, &BondMessage::Departure).await;
                    tx.finish();
                    return End::Leaving;
                }
            },
            () = &mut tick => {
                missed += 1;
                if missed > consensus.max_missed_heartbeats {
                    return End::Silent;
                }
                if send(group, tx, &BondMessage::Ping).await.is_err() {
                    return End::Lost;
                }
                tick.as_mut().reset(tokio::time::Instant::now()
                    + next_tick(consensus.heartbeat_interval, consensus.heartbeat_jitter));
            }
        }
    }
}

enum Reply {
    Nothing,
    Send(BondMessage),
    End(End),
}

fn handle(group: &Arc<Group>, peer: PeerId, msg: BondMessage) -> Reply {
    match msg {
        BondMessage::Ping => Reply::Send(BondMessage::Pong),
        BondMessage::Pong => Reply::Nothing,
        BondMessage::Departure => Reply::End(End::Departed),
        BondMessage::PeerEntryUpdate(entry) => {
            group.ctx().discovery.merge_all(vec![entry], Some(peer));
            Reply::Nothing
        }
        BondMessage::BondFormed { peer: other } => {
            group.record_bond_formed(peer, other);
            Reply::Nothing
        }
        BondMessage::Raft(bytes) => {
            group.deliver_raft(peer, bytes);
            Reply::Nothing
        }
        BondMessage::HandshakeStart { .. } | BondMessage::HandshakeEnd { .. } => {
            log::debug!("bond with {peer}: handshake message after the handshake");
            Reply::End(End::Violation)
        }
    }
}
