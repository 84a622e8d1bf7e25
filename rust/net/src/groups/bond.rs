//! The life of one bond: heartbeats (a ping each interval in which this
//! side sent nothing else), the messages it carries, and its end
//! (departure, silence, or a closed connection). A bond knows nothing of
//! its group: consensus messages go to the group's consensus inbox, and
//! everything else it learns is reported as a [`BondEvent`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mosaik_core::{ConsensusConfig, PeerId};
use rand::Rng;
use tokio::sync::mpsc;

use super::metrics::BondMetrics;
use super::wire::BondMessage;
use crate::close;
use crate::discovery::SignedEntry;
use crate::error::NetError;
use crate::link::{self, encode_frame, LinkReceiver, LinkSender};

/// Bytes of a frame written at a time (see `send`).
const SEND_PIECE: usize = 256 << 10;

/// What the group asks a bond task to send.
pub enum Outgoing {
    Message(BondMessage),
    /// Send `Departure`, then close.
    Depart,
}

/// What a bond tells its group.
pub enum BondEvent {
    /// `from` sent its own, newer discovery entry.
    PeerEntry { from: PeerId, entry: SignedEntry },
    /// `reporter` formed a bond with `peer`.
    Formed { reporter: PeerId, peer: PeerId },
    /// The bond of `generation` with `peer` ended (`departed`: the peer
    /// said it leaves the group).
    Ended {
        peer: PeerId,
        generation: u64,
        departed: bool,
    },
}

/// What a bond task needs besides its connection.
pub struct BondCtx {
    pub peer: PeerId,
    pub generation: u64,
    pub consensus: ConsensusConfig,
    pub metrics: Arc<BondMetrics>,
    /// The group's consensus inbox (an empty message: the peer is part
    /// way through sending a large one).
    pub raft: mpsc::UnboundedSender<(PeerId, Vec<u8>)>,
    pub events: mpsc::UnboundedSender<BondEvent>,
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

/// Runs the bond until it ends, then reports its end.
pub async fn run(
    ctx: BondCtx,
    conn: quinn::Connection,
    (mut tx, rx): (LinkSender, LinkReceiver),
    mut out: mpsc::UnboundedReceiver<Outgoing>,
) {
    let (in_tx, mut inbox) = mpsc::unbounded_channel();
    let received = rx.received();
    let reader = read_into(ctx.metrics.clone(), ctx.peer, rx, in_tx);
    tokio::pin!(reader);
    let driver = drive(&ctx, &mut tx, &mut inbox, &mut out, &received);
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
    let _ = ctx.events.send(BondEvent::Ended {
        peer: ctx.peer,
        generation: ctx.generation,
        departed: matches!(end, End::Departed),
    });
}

/// Reads frames into `inbox` until the stream fails or ends.
async fn read_into(
    metrics: Arc<BondMetrics>,
    peer: PeerId,
    mut rx: LinkReceiver,
    inbox: mpsc::UnboundedSender<BondMessage>,
) {
    loop {
        match rx.recv::<BondMessage>().await {
            Ok(msg) => {
                metrics.record_received(rx.last_frame_len());
                if inbox.send(msg).is_err() {
                    return;
                }
            }
            Err(e) => return log::debug!("bond with {peer} stopped reading: {e}"),
        }
    }
}

/// Sends one message. One above the frame limit the peer reads with (the
/// group's `max_message_bytes`) would end the bond there: it is dropped
/// here instead, with a warning naming the peer and the size. The frame
/// goes out in pieces, and a peer that takes no piece for as long as its
/// silence would end the bond (`max_missed_heartbeats` + 1 heartbeats) is
/// lost: a send blocked by a dead peer's flow control must not keep its
/// bond (and stop a restarted peer from bonding) until the connection
/// times out.
async fn send(ctx: &BondCtx, tx: &mut LinkSender, msg: &BondMessage) -> Result<(), NetError> {
    let frame = encode_frame(msg)?;
    let limit = ctx.consensus.max_message_bytes();
    if frame.len() - 4 > limit {
        log::warn!(
            "bond with {}: not sending a message of {} bytes, above the frame limit of {limit}",
            ctx.peer,
            frame.len() - 4
        );
        return Ok(());
    }
    let consensus = &ctx.consensus;
    let silence = consensus.heartbeat_interval * (consensus.max_missed_heartbeats + 1);
    for piece in frame.chunks(SEND_PIECE) {
        tokio::time::timeout(silence, tx.send_frame(piece))
            .await
            .map_err(|_| {
                NetError::ConnectionLost(format!("{} took no bytes for {silence:?}", ctx.peer))
            })??;
    }
    ctx.metrics.record_sent(frame.len());
    Ok(())
}

async fn drive(
    ctx: &BondCtx,
    tx: &mut LinkSender,
    inbox: &mut mpsc::UnboundedReceiver<BondMessage>,
    out: &mut mpsc::UnboundedReceiver<Outgoing>,
    received: &AtomicU64,
) -> End {
    let consensus = &ctx.consensus;
    let mut missed = 0u32;
    let mut seen = 0u64;
    // Whether the peer heard from this side since the last tick: then it
    // knows this side is alive, and a ping would only add traffic (an idle
    // leader's heartbeats and its followers' answers need no pings at all).
    let mut sent = false;
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
                match handle(ctx, msg) {
                    Reply::Nothing => {}
                    Reply::Send(reply) => {
                        if send(ctx, tx, &reply).await.is_err() { return End::Lost }
                        sent = true;
                    }
                    Reply::End(end) => return end,
                }
            }
            cmd = out.recv() => match cmd {
                Some(Outgoing::Message(msg)) => {
                    if send(ctx, tx, &msg).await.is_err() { return End::Lost }
                    sent = true;
                }
                Some(Outgoing::Depart) | None => {
                    let _ = send(ctx, tx, &BondMessage::Departure).await;
                    tx.finish();
                    return End::Leaving;
                }
            },
            () = &mut tick => {
                let read = received.load(Ordering::Relaxed);
                if std::mem::replace(&mut seen, read) != read && missed > 0 {
                    // Bytes came, but no whole message since the last tick:
                    // a large one is on its way. The peer is alive, and its
                    // group hears so (an empty consensus message).
                    missed = 0;
                    let _ = ctx.raft.send((ctx.peer, Vec::new()));
                }
                missed += 1;
                if missed > consensus.max_missed_heartbeats {
                    return End::Silent;
                }
                if !std::mem::take(&mut sent) && send(ctx, tx, &BondMessage::Ping).await.is_err() {
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

fn handle(ctx: &BondCtx, msg: BondMessage) -> Reply {
    let peer = ctx.peer;
    let report = |event| {
        let _ = ctx.events.send(event);
        Reply::Nothing
    };
    match msg {
        BondMessage::Ping => Reply::Send(BondMessage::Pong),
        BondMessage::Pong => Reply::Nothing,
        BondMessage::Departure => Reply::End(End::Departed),
        BondMessage::PeerEntryUpdate(entry) => report(BondEvent::PeerEntry { from: peer, entry }),
        BondMessage::BondFormed { peer: other } => report(BondEvent::Formed {
            reporter: peer,
            peer: other,
        }),
        BondMessage::Raft(bytes) => {
            let _ = ctx.raft.send((peer, bytes));
            Reply::Nothing
        }
        BondMessage::HandshakeStart { .. } | BondMessage::HandshakeEnd { .. } => {
            log::debug!("bond with {peer}: handshake message after the handshake");
            Reply::End(End::Violation)
        }
    }
}
