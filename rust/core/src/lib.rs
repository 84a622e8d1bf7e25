//! mosaik-core: everything of mosaik that needs no I/O.
//!
//! Identifiers and digests, group secrets from passphrases (Argon2id), the
//! modified Raft as a deterministic state machine driven by
//! `step`/`tick`/`propose`/`ready`, log storage and the log-replay sync logic.
//! Time and randomness come in from the driver; this crate never reads a
//! clock, spawns a thread or opens a socket.

pub mod config;
pub mod entry;
pub mod error;
pub mod ids;
mod memory_store;
#[cfg(any(test, feature = "model-store"))]
pub mod model_store;
pub mod passphrase;
pub mod raft;
pub mod rng;
pub mod storage;
pub mod sync;
pub mod wire;

pub use config::{ConsensusConfig, LeadershipPreference, MIN_MESSAGE_BYTES};
pub use entry::{
    Command, Committee, Entry, EntryKind, Index, LogPosition, RequestKey, Term, MAX_REQUEST_ID,
};
pub use error::{Error, Result};
pub use ids::{Digest, GroupId, NetworkId, PeerId, UniqueId};
pub use raft::{ClientEvent, NodeConfig, RaftNode, Ready, Role, Status};
pub use storage::{HardState, InMemoryLogStore, LogStore, Snapshot, SnapshotMeta};
pub use sync::LogReplaySync;
pub use wire::{decode, encode, Ask, Message, RequestId};
