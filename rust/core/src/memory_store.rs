//! `InMemoryLogStore`, the default store: the log kept compactly in memory.
//!
//! An entry costs a 32-byte `Bytes`, one byte saying how to read it, and
//! its payload. Small payloads are
//! copied into shared arena chunks, so that no entry holds an allocation of
//! its own and no entry keeps alive the message buffer it arrived in. Terms
//! are kept once per run of entries of one term. Slots live in blocks of
//! fixed capacity, so the log never holds more than one block of spare
//! slots, whatever its length. `docs/benchmarks.md` gives the measured
//! memory per entry.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::entry::{Committee, Entry, EntryKind, Index, LogPosition, RequestKey, Term};
use crate::error::{Error, Result};
use crate::storage::{check_compaction, check_continues, HardState, LogStore, Snapshot};

/// Slots per block.
const BLOCK: usize = 4096;
/// Bytes per arena chunk.
const CHUNK: usize = 64 << 10;
/// Largest payload (with its header) copied into the arena; a larger one
/// is kept in a buffer of its own.
const COPY_MAX: usize = 1024;

/// Tags of an encoded slot's first byte.
const MARKER: u8 = 0;
const REQUEST: u8 = 1;
const COMMITTEE: u8 = 2;
/// An encoded request: the tag, the sequence number (u32) and the length of
/// the request id (u32), little-endian, then the id and the payload.
const REQUEST_HEADER: usize = 9;

/// One entry's kind as kept: a [`Block`] stores the bytes and whether
/// they are encoded side by side.
#[derive(Debug, Clone)]
enum Slot {
    /// A command without a request id: its payload.
    Command(Bytes),
    /// Any other kind: a tag byte, then its fields.
    Encoded(Bytes),
}

/// Where small payloads are copied to: a chunk that every slot cut from it
/// shares, replaced by a fresh one when full.
#[derive(Debug, Clone, Default)]
struct Arena {
    chunk: BytesMut,
}

impl Arena {
    /// `parts` one after another, in one `Bytes`.
    fn copy(&mut self, parts: &[&[u8]]) -> Bytes {
        let size = parts.iter().map(|part| part.len()).sum();
        let mut own;
        let target = if size > COPY_MAX {
            own = BytesMut::with_capacity(size);
            &mut own
        } else {
            if self.chunk.capacity() - self.chunk.len() < size {
                self.chunk = BytesMut::with_capacity(CHUNK);
            }
            &mut self.chunk
        };
        for part in parts {
            target.extend_from_slice(part);
        }
        target.split().freeze()
    }

    fn slot(&mut self, kind: &EntryKind) -> Slot {
        match kind {
            EntryKind::Command(data) if data.len() > COPY_MAX => Slot::Command(data.clone()),
            EntryKind::Command(data) => Slot::Command(self.copy(&[data])),
            EntryKind::Marker => Slot::Encoded(Bytes::from_static(&[MARKER])),
            EntryKind::Request(key, data) => {
                let mut header = [0u8; REQUEST_HEADER];
                header[0] = REQUEST;
                header[1..5].copy_from_slice(&key.seq.to_le_bytes());
                let id_len = u32::try_from(key.id.len()).expect("request ids are short");
                header[5..].copy_from_slice(&id_len.to_le_bytes());
                Slot::Encoded(self.copy(&[&header, &key.id, data]))
            }
            EntryKind::Committee(committee) => {
                let encoded = postcard::to_extend(committee, vec![COMMITTEE]);
                Slot::Encoded(Bytes::from(encoded.expect("writing to memory cannot fail")))
            }
        }
    }
}

/// The kind kept as `bytes` (encoded or a command's payload).
fn kind_of(encoded: bool, bytes: &Bytes) -> EntryKind {
    if !encoded {
        return EntryKind::Command(bytes.clone());
    }
    match bytes[0] {
        MARKER => EntryKind::Marker,
        REQUEST => {
            let field =
                |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("four bytes"));
            let id_end = REQUEST_HEADER + field(5) as usize;
            let key = RequestKey {
                id: bytes.slice(REQUEST_HEADER..id_end),
                seq: field(1),
            };
            EntryKind::Request(Box::new(key), bytes.slice(id_end..))
        }
        _ => {
            let committee: Committee =
                postcard::from_bytes(&bytes[1..]).expect("encoded by Arena::slot");
            EntryKind::Committee(committee)
        }
    }
}

/// Up to [`BLOCK`] entries' bytes, and whether each is encoded.
#[derive(Debug, Clone)]
struct Block {
    bytes: Vec<Bytes>,
    encoded: Vec<bool>,
}

impl Block {
    fn new() -> Self {
        Block {
            bytes: Vec::with_capacity(BLOCK),
            encoded: Vec::with_capacity(BLOCK),
        }
    }

    fn len(&self) -> usize {
        self.bytes.len()
    }

    fn push(&mut self, slot: Slot) {
        let (bytes, encoded) = match slot {
            Slot::Command(bytes) => (bytes, false),
            Slot::Encoded(bytes) => (bytes, true),
        };
        self.bytes.push(bytes);
        self.encoded.push(encoded);
    }

    fn truncate(&mut self, len: usize) {
        self.bytes.truncate(len);
        self.encoded.truncate(len);
    }

    fn drop_front(&mut self, count: usize) {
        self.bytes.drain(..count);
        self.encoded.drain(..count);
    }

    /// The kinds from the `from`th entry on.
    fn kinds(&self, from: usize) -> impl Iterator<Item = EntryKind> + '_ {
        (self.bytes[from..].iter())
            .zip(&self.encoded[from..])
            .map(|(bytes, encoded)| kind_of(*encoded, bytes))
    }
}

/// A deque of slots in blocks of [`BLOCK`] capacity: every block but the
/// first and the last is full, and none is empty.
#[derive(Debug, Clone, Default)]
struct Slots {
    blocks: VecDeque<Block>,
    len: usize,
}

impl Slots {
    /// Block and offset of slot `at` (< len).
    fn locate(&self, at: usize) -> (usize, usize) {
        let first = self.blocks[0].len();
        if at < first {
            (0, at)
        } else {
            ((at - first) / BLOCK + 1, (at - first) % BLOCK)
        }
    }

    fn push(&mut self, slot: Slot) {
        match self.blocks.back_mut() {
            Some(block) if block.len() < BLOCK => block.push(slot),
            _ => {
                let mut block = Block::new();
                block.push(slot);
                self.blocks.push_back(block);
            }
        }
        self.len += 1;
    }

    /// The kinds of the slots in `start..end` (within the deque), in order.
    fn kinds(&self, start: usize, end: usize) -> impl Iterator<Item = EntryKind> + '_ {
        let (block, offset) = if start < self.len {
            self.locate(start)
        } else {
            (self.blocks.len(), 0)
        };
        self.blocks
            .range(block..)
            .enumerate()
            .flat_map(move |(k, b)| b.kinds(if k == 0 { offset } else { 0 }))
            .take(end.saturating_sub(start))
    }

    /// Keeps the first `len` slots.
    fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        if len == 0 {
            return self.clear();
        }
        let (block, offset) = self.locate(len);
        self.blocks.truncate(block + 1);
        self.blocks[block].truncate(offset);
        if offset == 0 {
            self.blocks.pop_back();
        }
        self.len = len;
    }

    /// Drops the first `count` slots.
    fn drop_front(&mut self, count: usize) {
        let mut left = count.min(self.len);
        self.len -= left;
        while let Some(first) = self.blocks.front_mut() {
            if left < first.len() {
                first.drop_front(left);
                return;
            }
            left -= first.len();
            self.blocks.pop_front();
        }
    }

    fn clear(&mut self) {
        self.blocks.clear();
        self.len = 0;
    }
}

/// A `LogStore` that keeps everything in memory (the default store).
#[derive(Debug, Clone, Default)]
pub struct InMemoryLogStore {
    hard_state: HardState,
    base: LogPosition,
    /// The entries after `base`, from `base.index + 1` on.
    slots: Slots,
    /// `(first index, term)` of each run of entries of one term, in log
    /// order; the first run may start before the log does.
    runs: VecDeque<(Index, Term)>,
    arena: Arena,
    snapshot: Option<Snapshot>,
}

impl InMemoryLogStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Slot of `index`, if the log holds it.
    fn slot(&self, index: Index) -> Option<usize> {
        let offset = index.checked_sub(self.base.index + 1)?;
        usize::try_from(offset).ok().filter(|s| *s < self.slots.len)
    }

    /// Slot where `index` is or would go, clamped to the log.
    fn clamped_slot(&self, index: Index) -> usize {
        let offset = index.saturating_sub(self.base.index + 1);
        usize::try_from(offset).map_or(self.slots.len, |s| s.min(self.slots.len))
    }

    /// Which run holds `index` (held by the log).
    fn run_of(&self, index: Index) -> usize {
        self.runs.partition_point(|(first, _)| *first <= index) - 1
    }

    fn drop_through(&mut self, index: Index) {
        let term = self.term_at(index).ok().flatten();
        let count = self.clamped_slot(index + 1);
        self.slots.drop_front(count);
        self.base = LogPosition::new(term.unwrap_or(self.base.term), index.max(self.base.index));
        let first = self.base.index + 1;
        while self.runs.len() > 1 && self.runs[1].0 <= first {
            self.runs.pop_front();
        }
        if self.slots.len == 0 {
            self.runs.clear();
        }
    }
}

impl LogStore for InMemoryLogStore {
    fn hard_state(&self) -> Result<HardState> {
        Ok(self.hard_state)
    }

    fn set_hard_state(&mut self, state: HardState) -> Result<()> {
        self.hard_state = state;
        Ok(())
    }

    fn base(&self) -> LogPosition {
        self.base
    }

    fn last_position(&self) -> Result<LogPosition> {
        Ok(match self.runs.back() {
            Some((_, term)) if self.slots.len > 0 => {
                LogPosition::new(*term, self.base.index + self.slots.len as Index)
            }
            _ => self.base,
        })
    }

    fn term_at(&self, index: Index) -> Result<Option<Term>> {
        if index == self.base.index {
            return Ok(Some(self.base.term));
        }
        Ok(self.slot(index).map(|_| self.runs[self.run_of(index)].1))
    }

    fn entries(&self, from: Index, to: Index, max: usize) -> Result<Vec<Entry>> {
        let start = self.clamped_slot(from);
        let end = self.clamped_slot(to).max(start);
        let end = end.min(start.saturating_add(max));
        if start == end {
            return Ok(Vec::new());
        }
        let first = self.base.index + 1 + start as Index;
        let mut run = self.run_of(first);
        let mut entries = Vec::with_capacity(end - start);
        for (index, kind) in (first..).zip(self.slots.kinds(start, end)) {
            while self
                .runs
                .get(run + 1)
                .is_some_and(|(next, _)| *next <= index)
            {
                run += 1;
            }
            entries.push(Entry {
                term: self.runs[run].1,
                index,
                kind,
            });
        }
        Ok(entries)
    }

    fn append(&mut self, entries: &[Entry]) -> Result<()> {
        check_continues(self.last_position()?.index, entries)?;
        for entry in entries {
            if self.runs.back().is_none_or(|(_, term)| *term != entry.term) {
                self.runs.push_back((entry.index, entry.term));
            }
            let slot = self.arena.slot(&entry.kind);
            self.slots.push(slot);
        }
        Ok(())
    }

    fn truncate_from(&mut self, index: Index) -> Result<()> {
        if index <= self.base.index {
            return Err(Error::Storage(format!(
                "cannot cut the log at {index}: it is compacted up to {}",
                self.base.index
            )));
        }
        let keep = self.clamped_slot(index);
        self.slots.truncate(keep);
        let end = self.base.index + 1 + keep as Index;
        while self.runs.back().is_some_and(|(first, _)| *first >= end) {
            self.runs.pop_back();
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        Ok(())
    }

    fn snapshot(&self) -> Result<Option<Snapshot>> {
        Ok(self.snapshot.clone())
    }

    fn save_snapshot(&mut self, snapshot: Snapshot, compact_to: Index) -> Result<()> {
        check_compaction(self, &snapshot, compact_to)?;
        self.drop_through(compact_to);
        self.snapshot = Some(snapshot);
        Ok(())
    }

    fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<()> {
        let position = snapshot.meta.position;
        if self.term_at(position.index)? == Some(position.term) {
            self.drop_through(position.index);
        } else {
            self.slots.clear();
            self.runs.clear();
        }
        self.base = position;
        self.snapshot = Some(snapshot);
        Ok(())
    }

    fn clear(&mut self) -> Result<()> {
        self.slots.clear();
        self.runs.clear();
        self.base = LogPosition::default();
        self.snapshot = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::PeerId;
    use crate::model_store::ModelLogStore;

    fn entry(term: Term, index: Index) -> Entry {
        Entry {
            term,
            index,
            kind: EntryKind::Marker,
        }
    }

    #[test]
    fn append_read_truncate() {
        let mut store = InMemoryLogStore::new();
        store
            .append(&[entry(1, 1), entry(1, 2), entry(2, 3)])
            .unwrap();
        assert_eq!(store.last_position().unwrap(), LogPosition::new(2, 3));
        assert_eq!(store.term_at(0).unwrap(), Some(0));
        assert_eq!(store.term_at(3).unwrap(), Some(2));
        assert_eq!(store.term_at(4).unwrap(), None);
        assert_eq!(store.entries(2, 10, 10).unwrap().len(), 2);
        assert_eq!(store.entries(1, 10, 1).unwrap().len(), 1);
        store.truncate_from(2).unwrap();
        assert_eq!(store.last_position().unwrap(), LogPosition::new(1, 1));
    }

    #[test]
    fn every_kind_reads_back_as_appended() {
        let committee = Committee {
            members: vec![PeerId([1; 32]), PeerId([2; 32])],
            electors: vec![(PeerId([1; 32]), 7)],
        };
        let key = RequestKey {
            id: Bytes::from_static(b"request-7"),
            seq: 3,
        };
        let kinds = [
            EntryKind::Marker,
            EntryKind::Command(Bytes::from_static(b"small")),
            EntryKind::Command(Bytes::from(vec![9u8; COPY_MAX + 1])),
            EntryKind::Command(Bytes::new()),
            EntryKind::Request(Box::new(key.clone()), Bytes::from_static(b"payload")),
            EntryKind::Request(Box::new(key), Bytes::from(vec![4u8; 3 * COPY_MAX])),
            EntryKind::Committee(committee),
        ];
        let entries: Vec<Entry> = (1..)
            .zip(kinds)
            .map(|(index, kind)| Entry {
                term: 1 + index / 3,
                index,
                kind,
            })
            .collect();
        let mut store = InMemoryLogStore::new();
        store.append(&entries).unwrap();
        assert_eq!(store.entries(0, 100, 100).unwrap(), entries);
    }

    #[test]
    fn blocks_are_crossed_by_reads_truncations_and_compaction() {
        let mut store = InMemoryLogStore::new();
        let count = 3 * BLOCK as Index + 17;
        let entries: Vec<Entry> = (1..=count).map(|i| entry(1 + i / 1000, i)).collect();
        store.append(&entries).unwrap();
        let from = BLOCK as Index - 2;
        assert_eq!(
            store.entries(from, from + 5000, usize::MAX).unwrap(),
            entries[from as usize - 1..from as usize + 4999]
        );
        let snapshot = Snapshot::new(entries[4999].position(), Bytes::from_static(b"s"));
        store.save_snapshot(snapshot, 4500).unwrap();
        assert_eq!(store.term_at(4501).unwrap(), Some(entries[4500].term));
        assert_eq!(store.entries(0, 4503, 10).unwrap(), entries[4500..4502]);
        store.truncate_from(2 * BLOCK as Index + 1).unwrap();
        assert_eq!(
            store.last_position().unwrap(),
            entries[2 * BLOCK - 1].position()
        );
        store.append(&entries[2 * BLOCK..]).unwrap();
        assert_eq!(
            store.entries(4501, count + 1, usize::MAX).unwrap(),
            entries[4500..]
        );
    }

    #[test]
    fn compaction_keeps_the_tail_and_the_base_term() {
        let mut store = InMemoryLogStore::new();
        let entries: Vec<Entry> = (1..=10).map(|i| entry(1 + i / 5, i)).collect();
        store.append(&entries).unwrap();
        let snapshot = Snapshot::new(LogPosition::new(2, 8), Bytes::from_static(b"state"));
        store.save_snapshot(snapshot.clone(), 6).unwrap();
        assert_eq!(store.base(), LogPosition::new(2, 6));
        assert_eq!(store.term_at(6).unwrap(), Some(2));
        assert_eq!(store.term_at(5).unwrap(), None);
        assert_eq!(store.entries(1, 11, 100).unwrap()[0].index, 7);
        assert!(store.truncate_from(6).is_err());
        assert_eq!(store.snapshot().unwrap(), Some(snapshot));
    }

    #[test]
    fn installing_a_foreign_snapshot_drops_the_whole_log() {
        let mut store = InMemoryLogStore::new();
        store.append(&[entry(1, 1), entry(1, 2)]).unwrap();
        let snapshot = Snapshot::new(LogPosition::new(3, 50), Bytes::from_static(b"s"));
        assert!(snapshot.is_intact());
        store.install_snapshot(snapshot).unwrap();
        assert_eq!(store.last_position().unwrap(), LogPosition::new(3, 50));
        assert!(store.entries(1, 100, 100).unwrap().is_empty());
        store.append(&[entry(3, 51)]).unwrap();
        assert_eq!(store.last_position().unwrap(), LogPosition::new(3, 51));
    }

    #[test]
    fn append_with_a_gap_is_refused() {
        let mut store = InMemoryLogStore::new();
        assert!(store.append(&[entry(1, 2)]).is_err());
    }

    /// One step of the property test below.
    #[derive(Debug, Clone)]
    enum Op {
        /// `count` entries, of a new term if `new_term`, kinds by `kinds`.
        Append {
            count: usize,
            new_term: bool,
            kinds: u64,
        },
        /// Cut at a point of the log (a fraction of it; below 0 is before
        /// its base, which must be refused).
        Truncate(f64),
        /// A snapshot at one point, compacting to an earlier one.
        Save(f64, f64),
        /// A snapshot at a point, of the held term or of a later one.
        Install(f64, bool),
        HardState(u64),
        Clear,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            6 => (1usize..40, any::<bool>(), any::<u64>())
                .prop_map(|(count, new_term, kinds)| Op::Append { count, new_term, kinds }),
            2 => (1usize..3 * BLOCK, any::<bool>(), any::<u64>())
                .prop_map(|(count, new_term, kinds)| Op::Append { count, new_term, kinds }),
            2 => (-0.3..1.0f64).prop_map(Op::Truncate),
            2 => (0.0..1.0f64, 0.0..1.0f64).prop_map(|(at, to)| Op::Save(at, to)),
            1 => (0.0..1.2f64, any::<bool>()).prop_map(|(at, held)| Op::Install(at, held)),
            1 => any::<u64>().prop_map(Op::HardState),
            1 => Just(Op::Clear),
        ]
    }

    fn kind(seed: u64, index: Index) -> EntryKind {
        let payload = |len: u64| Bytes::from(vec![index as u8; len as usize]);
        match (seed ^ index.wrapping_mul(0x9e37_79b9)) % 7 {
            0 => EntryKind::Marker,
            1 => EntryKind::Request(
                Box::new(RequestKey {
                    id: payload(index % 64),
                    seq: index as u32,
                }),
                payload(index % 50),
            ),
            2 => EntryKind::Committee(Committee {
                members: vec![PeerId([index as u8; 32])],
                electors: vec![],
            }),
            3 => EntryKind::Command(payload(COPY_MAX as u64 + index % 3)),
            4 if index.is_multiple_of(5) => EntryKind::Request(
                Box::new(RequestKey {
                    id: payload(8),
                    seq: 0,
                }),
                payload(COPY_MAX as u64),
            ),
            len => EntryKind::Command(payload(len * 5)),
        }
    }

    /// An index `fraction` of the way from the base of `store`'s log to
    /// its end (below the base for a negative one, down to 0).
    fn point(store: &impl LogStore, fraction: f64) -> Index {
        let base = store.base().index;
        if fraction < 0.0 {
            return base.saturating_sub(1 + (-fraction * 10.0) as Index);
        }
        let last = store.last_position().unwrap().index;
        base + ((last - base) as f64 * fraction) as Index
    }

    fn apply(store: &mut dyn LogStore, model: &ModelLogStore, op: &Op) -> Result<()> {
        let last = model.last_position()?;
        match *op {
            Op::Append {
                count,
                new_term,
                kinds,
            } => {
                let term = last.term + u64::from(new_term);
                let entries: Vec<Entry> = (last.index + 1..)
                    .take(count)
                    .map(|index| Entry {
                        term,
                        index,
                        kind: kind(kinds, index),
                    })
                    .collect();
                store.append(&entries)
            }
            Op::Truncate(at) => store.truncate_from(point(model, at) + 1),
            Op::Save(at, to) => {
                let index = point(model, at);
                let term = model.term_at(index)?.expect("held");
                let base = model.base().index;
                let compact_to = base + ((index - base) as f64 * to) as Index;
                let snapshot = Snapshot::new(LogPosition::new(term, index), Bytes::from("s"));
                store.save_snapshot(snapshot, compact_to)
            }
            Op::Install(at, held) => {
                let index = point(model, at.min(1.0)) + u64::from(at > 1.0) * 5;
                let term = match model.term_at(index)? {
                    Some(term) if held => term,
                    _ => last.term + 1,
                };
                let snapshot = Snapshot::new(LogPosition::new(term, index), Bytes::from("i"));
                store.install_snapshot(snapshot)
            }
            Op::HardState(term) => store.set_hard_state(HardState {
                term,
                ..HardState::default()
            }),
            Op::Clear => store.clear(),
        }
    }

    proptest::proptest! {
        /// The compact store answers every call as the plain model does,
        /// after any sequence of appends (across blocks and arena chunks),
        /// truncations, compactions, installs and clears.
        #[test]
        fn the_compact_store_behaves_as_the_model(ops in proptest::collection::vec(op(), 1..40)) {
            let mut store = InMemoryLogStore::new();
            let mut model = ModelLogStore::new();
            for op in &ops {
                let snapshot_of_model = model.clone();
                let ours = apply(&mut store, &snapshot_of_model, op);
                let theirs = apply(&mut model, &snapshot_of_model, op);
                proptest::prop_assert_eq!(ours.is_ok(), theirs.is_ok(), "{:?}", op);
                let last = model.last_position().unwrap();
                proptest::prop_assert_eq!(store.base(), model.base());
                proptest::prop_assert_eq!(store.last_position().unwrap(), last);
                proptest::prop_assert_eq!(store.hard_state().unwrap(), model.hard_state().unwrap());
                proptest::prop_assert_eq!(store.snapshot().unwrap(), model.snapshot().unwrap());
                let all = |s: &dyn LogStore| s.entries(0, Index::MAX, usize::MAX).unwrap();
                proptest::prop_assert_eq!(all(&store), all(&model));
                let base = model.base().index;
                for index in [0, base.saturating_sub(1), base, base + 1, last.index, last.index + 1] {
                    proptest::prop_assert_eq!(store.term_at(index).unwrap(), model.term_at(index).unwrap());
                }
                let (from, to) = (point(&model, 0.3), point(&model, 0.8) + 2);
                proptest::prop_assert_eq!(
                    store.entries(from, to, 100).unwrap(),
                    model.entries(from, to, 100).unwrap()
                );
                proptest::prop_assert_eq!(
                    store.entries_within(from, to, 50, 700).unwrap(),
                    model.entries_within(from, to, 50, 700).unwrap()
                );
            }
        }
    }
}
