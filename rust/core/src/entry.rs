//! Log entries and log positions: the data every other module passes around.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::ids::PeerId;

/// Position of an entry in the log, counted from 1 (0 means "before the log").
pub type Index = u64;
/// A Raft term: a ballot `election round << 32 | 32-bit tag`, the tag drawn
/// by the candidate's node at each start (see `raft::candidate`). Terms
/// compare by round first; 0 is the bootstrap term before any election.
pub type Term = u64;

/// (term, index) of a log entry; ordered by term first, as Raft compares logs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct LogPosition {
    pub term: Term,
    pub index: Index,
}

impl LogPosition {
    pub fn new(term: Term, index: Index) -> Self {
        LogPosition { term, index }
    }
}

/// What an entry carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntryKind {
    /// Written by every new leader at the start of its term; applies nothing.
    Marker,
    /// An opaque command for the state machine.
    Command(Bytes),
    /// The voters that count from here on (consistency-first groups; see
    /// `raft::committee`); applies nothing.
    Committee(Committee),
    /// A command made with a caller's request id: the apply layer applies
    /// it once per id within the group's `dedupe_window`. The key is boxed
    /// so that every entry of the log stays as small as before.
    Request(Box<RequestKey>, Bytes),
}

/// Longest request id a caller may give, in bytes.
pub const MAX_REQUEST_ID: usize = 64;

/// What identifies a command made with a request id: the caller's id and
/// the command's place in the batch it was proposed in (0 for one command),
/// so that each command of a retried batch is recognised on its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RequestKey {
    pub id: Bytes,
    pub seq: u32,
}

/// A command as proposed: its encoded payload and, when the caller gave a
/// request id, its key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Command {
    pub data: Bytes,
    pub request: Option<RequestKey>,
}

impl Command {
    /// The log entry kind that carries this command.
    pub fn into_kind(self) -> EntryKind {
        match self.request {
            None => EntryKind::Command(self.data),
            Some(key) => EntryKind::Request(Box::new(key), self.data),
        }
    }

    /// Bytes of payload and request id: what a message carrying it grows by.
    pub fn size(&self) -> usize {
        self.data.len() + self.request.as_ref().map_or(0, |key| key.id.len())
    }
}

impl From<Bytes> for Command {
    fn from(data: Bytes) -> Self {
        Command {
            data,
            request: None,
        }
    }
}

/// A committee of voters: its members, and the voters of the group's first
/// election with the life each voted from (a learner among them counts for
/// this lineage; see `raft::committee`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Committee {
    pub members: Vec<PeerId>,
    pub electors: Vec<(PeerId, u64)>,
}

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry {
    pub term: Term,
    pub index: Index,
    pub kind: EntryKind,
}

impl Entry {
    pub fn position(&self) -> LogPosition {
        LogPosition::new(self.term, self.index)
    }

    /// The command payload, or `None` for a marker or committee entry.
    pub fn command(&self) -> Option<&Bytes> {
        match &self.kind {
            EntryKind::Command(bytes) | EntryKind::Request(_, bytes) => Some(bytes),
            EntryKind::Marker | EntryKind::Committee(_) => None,
        }
    }

    /// The request key of a command made with a request id.
    pub fn request(&self) -> Option<&RequestKey> {
        match &self.kind {
            EntryKind::Request(key, _) => Some(key),
            _ => None,
        }
    }

    /// Bytes of what the entry carries (payload and request id, or a
    /// committee's peers, generously): what a message holding it grows by
    /// beyond a fixed overhead.
    pub fn size(&self) -> usize {
        match &self.kind {
            EntryKind::Marker => 0,
            EntryKind::Command(data) => data.len(),
            EntryKind::Request(key, data) => data.len() + key.id.len(),
            EntryKind::Committee(c) => (c.members.len() + c.electors.len()) * 48,
        }
    }
}
