//! mosaik-core: everything of mosaik that needs no I/O.
//!
//! Identifiers and digests, the modified Raft as a deterministic state
//! machine driven by `step`/`tick`/`propose`/`ready`, log storage and the
//! log-replay sync logic. Time and randomness come in from the driver; this
//! crate never reads a clock, spawns a thread or opens a socket.

pub mod ids;

pub use ids::{Digest, GroupId, NetworkId, PeerId, UniqueId};
