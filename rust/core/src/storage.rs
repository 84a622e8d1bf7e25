//! Durable state of one node: the hard state (term, vote), the log and the
//! latest snapshot, behind the `LogStore` trait (the in-memory
//! implementation is `memory_store`, a plain model of it `model_store`).
//!
//! The Raft core writes through the store as it goes; a store may buffer
//! writes, and `sync` makes everything written so far durable. The driver
//! calls `RaftNode::sync_storage` whenever a `Ready` says `must_sync`,
//! before it sends that ready's `persisted_messages`. Snapshot calls are
//! durable on return.
//!
//! A log compacted behind a snapshot starts after its `base` position: the
//! entries up to `base.index` are gone, `term_at(base.index)` still answers.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::config::ENTRY_OVERHEAD;
use crate::entry::{Entry, Index, LogPosition, Term};
use crate::error::{Error, Result};
use crate::ids::{Digest, PeerId};
pub use crate::memory_store::InMemoryLogStore;

/// What Raft must never forget across a restart besides the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HardState {
    pub term: Term,
    pub vote: Option<PeerId>,
    /// The node started with an empty store and no leader has caught it up
    /// yet (`raft::committee`); kept so that a crash in between does not
    /// make a half-filled log count. Stores persist it beside the rest.
    #[serde(skip)]
    pub learner: bool,
    /// Drawn at random when a node starts with an empty store and kept
    /// with it: the same life survives restarts with the store, a lost
    /// store starts a new one. Stores persist it beside the rest.
    #[serde(skip)]
    pub life: u64,
}

/// Identity of a snapshot: the last entry it covers and the blake3 digest
/// and length of its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub position: LogPosition,
    pub digest: Digest,
    pub size: u64,
}

/// A state machine's state after applying every entry up to `meta.position`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    pub data: Bytes,
}

impl Snapshot {
    /// A snapshot of `data` taken after applying the entry at `position`.
    pub fn new(position: LogPosition, data: Bytes) -> Self {
        let meta = SnapshotMeta {
            position,
            digest: Digest::of(&data),
            size: data.len() as u64,
        };
        Snapshot { meta, data }
    }

    /// Whether `data` is what `meta` describes.
    pub fn is_intact(&self) -> bool {
        self.meta.size == self.data.len() as u64 && self.meta.digest == Digest::of(&self.data)
    }
}

/// Storage of one node's hard state, log (indices start at 1, no gaps, the
/// prefix up to `base` may be compacted away) and latest snapshot.
pub trait LogStore {
    fn hard_state(&self) -> Result<HardState>;
    fn set_hard_state(&mut self, state: HardState) -> Result<()>;
    /// Position of the last compacted entry; (0, 0) when nothing was compacted.
    fn base(&self) -> LogPosition;
    /// (term, index) of the last entry; `base()` when the log holds none.
    fn last_position(&self) -> Result<LogPosition>;
    /// Term of the entry at `index`: `Some(0)` for index 0, the base term at
    /// `base().index`, `None` below the base or past the end.
    fn term_at(&self, index: Index) -> Result<Option<Term>>;
    /// Entries in `from..to` clamped to `base().index + 1..=last`, at most `max`.
    fn entries(&self, from: Index, to: Index, max: usize) -> Result<Vec<Entry>>;
    /// `entries`, also cut before the entry that would take the entries
    /// after the first past `max_bytes`, each counted as
    /// [`entry_cost`] (or a store's own measure, as long as it is not
    /// smaller). The first entry comes whatever its size. A store that
    /// reads from disk overrides this so that it reads no entry it drops.
    fn entries_within(
        &self,
        from: Index,
        to: Index,
        max: usize,
        max_bytes: usize,
    ) -> Result<Vec<Entry>> {
        let mut entries = self.entries(from, to, max)?;
        let keep = within_budget(entries.iter().map(entry_cost), max_bytes);
        entries.truncate(keep);
        Ok(entries)
    }
    /// Appends entries that continue the log exactly at `last_position().index + 1`.
    fn append(&mut self, entries: &[Entry]) -> Result<()>;
    /// Removes the entry at `index` and everything after it (`index > base().index`).
    fn truncate_from(&mut self, index: Index) -> Result<()>;
    /// Makes everything written so far durable.
    fn sync(&mut self) -> Result<()>;
    /// The latest snapshot kept, if any.
    fn snapshot(&self) -> Result<Option<Snapshot>>;
    /// Keeps `snapshot` (taken from this node's own applied log) in place of
    /// the previous one and drops the entries up to `compact_to`, which is at
    /// most the snapshot's index and within the log.
    fn save_snapshot(&mut self, snapshot: Snapshot, compact_to: Index) -> Result<()>;
    /// Installs a snapshot fetched from peers: the log keeps only the entries
    /// after it when it holds the snapshot's position, and nothing otherwise;
    /// the base becomes the snapshot's position.
    fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<()>;
    /// Drops the whole log and the snapshot (the hard state stays).
    fn clear(&mut self) -> Result<()>;
}

/// What an entry costs in a message or batch: [`Entry::size`] plus the
/// fixed [`ENTRY_OVERHEAD`], at least its encoded size.
pub fn entry_cost(entry: &Entry) -> usize {
    entry.size() + ENTRY_OVERHEAD
}

/// How many of the leading `costs` fit in `max_bytes`: at least one (when
/// there is one), then as long as the sum stays within the budget.
pub fn within_budget(costs: impl IntoIterator<Item = usize>, max_bytes: usize) -> usize {
    let mut total = 0usize;
    let mut count = 0;
    for cost in costs {
        total = total.saturating_add(cost);
        if count > 0 && total > max_bytes {
            break;
        }
        count += 1;
    }
    count
}

/// Refuses entries that do not continue a log ending at `last` without a gap.
pub fn check_continues(last: Index, entries: &[Entry]) -> Result<()> {
    for (expected, entry) in (last + 1..).zip(entries) {
        if entry.index != expected {
            return Err(Error::Storage(format!(
                "append at index {} but the log continues at {expected}",
                entry.index
            )));
        }
    }
    Ok(())
}

/// Refuses a snapshot of an entry the log does not hold, or a compaction
/// past the snapshot or outside the log.
pub fn check_compaction(
    store: &impl LogStore,
    snapshot: &Snapshot,
    compact_to: Index,
) -> Result<()> {
    let position = snapshot.meta.position;
    if store.term_at(position.index)? != Some(position.term) {
        return Err(Error::Storage(format!(
            "snapshot at {}/{} does not match the log",
            position.term, position.index
        )));
    }
    if compact_to > position.index || compact_to < store.base().index {
        return Err(Error::Storage(format!(
            "cannot compact to {compact_to}: the snapshot is at {} and the log starts after {}",
            position.index,
            store.base().index
        )));
    }
    Ok(())
}

impl<T: LogStore + ?Sized> LogStore for Box<T> {
    fn hard_state(&self) -> Result<HardState> {
        (**self).hard_state()
    }
    fn set_hard_state(&mut self, state: HardState) -> Result<()> {
        (**self).set_hard_state(state)
    }
    fn base(&self) -> LogPosition {
        (**self).base()
    }
    fn last_position(&self) -> Result<LogPosition> {
        (**self).last_position()
    }
    fn term_at(&self, index: Index) -> Result<Option<Term>> {
        (**self).term_at(index)
    }
    fn entries(&self, from: Index, to: Index, max: usize) -> Result<Vec<Entry>> {
        (**self).entries(from, to, max)
    }
    fn entries_within(
        &self,
        from: Index,
        to: Index,
        max: usize,
        max_bytes: usize,
    ) -> Result<Vec<Entry>> {
        (**self).entries_within(from, to, max, max_bytes)
    }
    fn append(&mut self, entries: &[Entry]) -> Result<()> {
        (**self).append(entries)
    }
    fn truncate_from(&mut self, index: Index) -> Result<()> {
        (**self).truncate_from(index)
    }
    fn sync(&mut self) -> Result<()> {
        (**self).sync()
    }
    fn snapshot(&self) -> Result<Option<Snapshot>> {
        (**self).snapshot()
    }
    fn save_snapshot(&mut self, snapshot: Snapshot, compact_to: Index) -> Result<()> {
        (**self).save_snapshot(snapshot, compact_to)
    }
    fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<()> {
        (**self).install_snapshot(snapshot)
    }
    fn clear(&mut self) -> Result<()> {
        (**self).clear()
    }
}
