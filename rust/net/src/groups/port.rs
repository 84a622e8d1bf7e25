//! The consensus port of a group's bond mesh: what the consensus worker
//! needs of the mesh and nothing more. Messages from bonded peers arrive on
//! the inbox, messages to them leave through the outbox, and a watch shows
//! which peers are bonded (and when the group was left).

use std::collections::BTreeSet;
use std::sync::Arc;

use mosaik_core::PeerId;
use tokio::sync::{mpsc, watch};

/// Consensus messages received on bonds, with their sender; an empty one
/// says that the sender is part way through sending a large message.
pub type RaftInbox = mpsc::UnboundedReceiver<(PeerId, Vec<u8>)>;

/// Where consensus messages to bonded peers go.
pub trait Outbox: Send + Sync {
    /// Queues `bytes` to `peer`; false when not bonded.
    fn send(&self, peer: &PeerId, bytes: Vec<u8>) -> bool;
}

/// The mesh as the worker sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bonded {
    pub peers: BTreeSet<PeerId>,
    /// The group was left: the worker stops.
    pub left: bool,
}

/// One group's mesh, as handed to its consensus worker.
pub struct ConsensusPort {
    pub local: PeerId,
    pub inbox: RaftInbox,
    pub outbox: Arc<dyn Outbox>,
    pub bonded: watch::Receiver<Bonded>,
}
