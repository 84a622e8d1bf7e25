//! `DiskLogStore`: the durable `LogStore` over a directory of log segments,
//! the `meta` file and one snapshot file, with its open options.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use mosaik_core::storage::{check_compaction, check_continues, within_budget};
use mosaik_core::{Entry, Error, HardState, Index, LogPosition, LogStore, Result, Snapshot, Term};

use crate::cache::RecentEntries;
use crate::dir::{DataDir, Missing};
use crate::error::StoreError;
use crate::file::StoreFile;
use crate::index::EntryIndex;
use crate::meta::{MetaFile, MetaState};
use crate::record;
use crate::recovery::{self, Recovery};
use crate::segment::Segment;
use crate::snapshot_file;
use crate::sync_times::SyncTimes;

const META: &str = "meta";
/// The file holding the id of the group the directory belongs to, and the
/// name it is written under before the rename that makes it whole.
const OWNER: &str = "group";
const OWNER_TEMPORARY: &str = "group.tmp";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Tuning of a [`DiskLogStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskOptions {
    /// A segment that reached this size is closed and the next append starts a new one.
    pub segment_bytes: u64,
    /// Most recently appended entries kept in memory for reads.
    pub cache_entries: usize,
    /// Bound on the command bytes of the cached entries.
    pub cache_bytes: usize,
}

impl Default for DiskOptions {
    fn default() -> Self {
        DiskOptions {
            segment_bytes: 64 << 20,
            cache_entries: 4096,
            cache_bytes: 64 << 20,
        }
    }
}

/// A `LogStore` kept in a directory, safe across crashes and restarts.
///
/// Appends, truncations and hard state writes are buffered in the OS until
/// `sync`, which fdatasyncs every file written since the last one (group
/// commit). Snapshot calls and `clear` are durable on return.
#[derive(Debug)]
pub struct DiskLogStore {
    dir: DataDir,
    options: DiskOptions,
    meta: MetaFile,
    segments: VecDeque<Segment>,
    index: EntryIndex,
    cache: RecentEntries,
    snapshot: Option<Snapshot>,
    /// A segment was created since the directory was last fsynced.
    dir_dirty: bool,
    sync_times: Arc<SyncTimes>,
}

impl DiskLogStore {
    /// Opens the store in `path` (created if missing), repairing a torn
    /// log tail and refusing a damaged log; holds the directory's lock
    /// until dropped.
    pub fn open(
        path: impl AsRef<Path>,
        options: DiskOptions,
    ) -> Result<(DiskLogStore, Recovery), StoreError> {
        let dir = DataDir::open(path.as_ref())?;
        let meta = MetaFile::open(&dir.join(META))?;
        let snapshot = snapshot_file::recover(&dir, meta.state().snapshot)?;
        let log = recovery::load_log(&dir, meta.state().base)?;
        let recovery = Recovery {
            entries: log.index.len(),
            segments: log.segments.len(),
            torn_tail: log.torn_tail,
        };
        let mut store = DiskLogStore {
            dir,
            options,
            meta,
            segments: log.segments,
            index: log.index,
            cache: RecentEntries::new(options.cache_entries, options.cache_bytes),
            snapshot,
            dir_dirty: true,
            sync_times: Arc::default(),
        };
        // What the store serves from now on (a vote, entries a leader
        // counts as its own durable copy) must be durable, even if the
        // process that wrote it crashed before its sync.
        store.sync_all()?;
        Ok((store, recovery))
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Binds the directory to the group `owner` (its 32-byte id): the first
    /// claim writes it into the file `group` (durably, by a rename); a later
    /// one must name the same group, or the directory is refused with
    /// [`StoreError::OtherGroup`]. A directory from before claims is
    /// claimed by the first group that opens it.
    pub fn claim(&self, owner: &[u8; 32]) -> Result<(), StoreError> {
        let path = self.dir.join(OWNER);
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let temporary = self.dir.join(OWNER_TEMPORARY);
                let mut file = StoreFile::open(temporary.clone(), Missing::Create)?;
                file.set_len(0)?;
                file.write_at(owner, 0)?;
                file.sync()?;
                fs::rename(&temporary, &path).map_err(|e| StoreError::io(&path, e))?;
                return self.dir.sync();
            }
            Err(e) => return Err(StoreError::io(path, e)),
            Ok(_) => {}
        }
        // Opened as every store file is: a symbolic link is refused.
        let found = StoreFile::open(path.clone(), Missing::Fail)?.read_to_end()?;
        if found == owner {
            Ok(())
        } else if found.len() == owner.len() {
            Err(StoreError::OtherGroup {
                path: self.dir.path().to_path_buf(),
                found: hex(&found),
                expected: hex(owner),
            })
        } else {
            Err(StoreError::Damaged {
                path,
                reason: format!("{} bytes, not a 32-byte group id", found.len()),
            })
        }
    }

    /// Position in `segments` of the segment holding `index`.
    fn segment_of(&self, index: Index) -> usize {
        let after = self.segments.partition_point(|s| s.first_index() <= index);
        after.saturating_sub(1)
    }

    /// The segment to append the entry at `next_index` to, starting a new
    /// one (after syncing the full one) when there is none or it is full.
    fn writable_segment(&mut self, next_index: Index) -> Result<&mut Segment, StoreError> {
        let full = self
            .segments
            .back()
            .is_none_or(|s| s.len() >= self.options.segment_bytes);
        if full {
            if let Some(previous) = self.segments.back_mut() {
                previous.sync()?;
            }
            let segment = Segment::create(self.dir.path(), next_index)?;
            self.segments.push_back(segment);
            self.dir_dirty = true;
        }
        Ok(self.segments.back_mut().expect("a writable segment exists"))
    }

    /// Appends as many of `entries` as fit in one segment; returns how many.
    fn append_to_segment(&mut self, entries: &[Entry]) -> Result<usize, StoreError> {
        let limit = self.options.segment_bytes;
        let segment = self.writable_segment(entries[0].index)?;
        let mut bytes = Vec::new();
        let mut offsets = Vec::new();
        for entry in entries {
            offsets.push(segment.len() + bytes.len() as u64);
            record::encode(entry, &mut bytes)?;
            if segment.len() + bytes.len() as u64 >= limit {
                break;
            }
        }
        segment.append(&bytes)?;
        for (entry, offset) in entries.iter().zip(&offsets) {
            self.index.push(entry.term, *offset);
            self.cache.push(entry);
        }
        Ok(offsets.len())
    }

    /// Reads the entries `start..end` back from the segment files.
    fn read_entries(&self, start: Index, end: Index) -> Result<Vec<Entry>, StoreError> {
        let mut entries = Vec::with_capacity((end - start) as usize);
        let mut index = start;
        while index < end {
            index = self.read_run(index, end, &mut entries)?;
        }
        Ok(entries)
    }

    /// Reads the entries from `start` up to `end` or the end of the segment
    /// holding `start`, with one positioned read; returns where it stopped.
    fn read_run(
        &self,
        start: Index,
        end: Index,
        out: &mut Vec<Entry>,
    ) -> Result<Index, StoreError> {
        let position = self.segment_of(start);
        let segment = &self.segments[position];
        let segment_end = self.segment_end(position);
        let run_end = segment_end.min(end);
        let from = self.index.offset(start);
        let to = if run_end < segment_end {
            self.index.offset(run_end)
        } else {
            segment.len()
        };
        let bytes = segment.read(from, to - from)?;
        let mut offset = 0;
        for expected in start..run_end {
            let bad_record = |reason: String| StoreError::BadRecord {
                segment: segment.path().to_path_buf(),
                offset: from + offset as u64,
                reason,
            };
            let (entry, next) =
                record::parse_at(&bytes, offset).map_err(|bad| bad_record(bad.to_string()))?;
            if entry.index != expected {
                let found = entry.index;
                return Err(bad_record(format!(
                    "expected entry {expected}, found entry {found}"
                )));
            }
            out.push(entry);
            offset = next;
        }
        Ok(run_end)
    }

    /// First index past the entries of the segment at `position`.
    /// Bytes of the records `start..end` when they lie in one segment (one
    /// subtraction), else `usize::MAX` (measure them one by one).
    fn run_len(&self, start: Index, end: Index) -> usize {
        if start >= end {
            return 0;
        }
        let position = self.segment_of(start);
        let segment_end = self.segment_end(position);
        if end > segment_end {
            return usize::MAX;
        }
        let stop = if end < segment_end {
            self.index.offset(end)
        } else {
            self.segments[position].len()
        };
        usize::try_from(stop - self.index.offset(start)).unwrap_or(usize::MAX)
    }

    /// Bytes of the record of the entry at `index`, which the log holds.
    fn record_len(&self, index: Index) -> usize {
        let position = self.segment_of(index);
        let next = if index + 1 < self.segment_end(position) {
            self.index.offset(index + 1)
        } else {
            self.segments[position].len()
        };
        usize::try_from(next - self.index.offset(index)).unwrap_or(usize::MAX)
    }

    fn segment_end(&self, position: usize) -> Index {
        self.segments
            .get(position + 1)
            .map_or(self.index.last().index + 1, |next| next.first_index())
    }

    /// Removes the segments after the one at `position` (newest first) and
    /// makes that durable.
    fn remove_segments_after(&mut self, position: usize) -> Result<(), StoreError> {
        let later = self.segments.split_off(position + 1);
        if later.is_empty() {
            return Ok(());
        }
        for segment in later.into_iter().rev() {
            segment.remove()?;
        }
        self.dir.sync()
    }

    /// Removes every segment and makes that durable.
    fn remove_all_segments(&mut self) -> Result<(), StoreError> {
        while let Some(segment) = self.segments.pop_back() {
            segment.remove()?;
        }
        self.dir.sync()
    }

    /// Removes the segments all of whose entries are at or below `index`.
    fn remove_segments_through(&mut self, index: Index) -> Result<(), StoreError> {
        while !self.segments.is_empty() && self.segment_end(0) <= index + 1 {
            if let Some(segment) = self.segments.pop_front() {
                segment.remove()?;
            }
        }
        Ok(())
    }

    /// Durably records a new base and the snapshot in force.
    fn commit_base(
        &mut self,
        base: LogPosition,
        snapshot: Option<Index>,
    ) -> Result<(), StoreError> {
        let state = MetaState {
            hard_state: self.meta.state().hard_state,
            base,
            snapshot,
        };
        self.meta.write(state)?;
        self.meta.sync().map(|_| ())
    }

    /// Drops the entries up to `base.index`, which the log holds, and makes `base` the base.
    fn compact(&mut self, base: LogPosition) -> Result<(), StoreError> {
        self.index.compact(base);
        self.cache.drop_through(base.index);
        self.remove_segments_through(base.index)
    }

    /// Drops the whole log and starts it after `base`.
    fn restart_log(&mut self, base: LogPosition) -> Result<(), StoreError> {
        self.remove_all_segments()?;
        self.index.reset(base);
        self.cache.clear();
        Ok(())
    }

    /// Makes every write durable; the time it took is recorded in
    /// `sync_times` when there was anything to make durable.
    fn sync_all(&mut self) -> Result<(), StoreError> {
        let started = Instant::now();
        let mut synced = false;
        for segment in &mut self.segments {
            synced |= segment.sync()?;
        }
        synced |= self.meta.sync()?;
        if self.dir_dirty {
            self.dir.sync()?;
            self.dir_dirty = false;
            synced = true;
        }
        if synced {
            self.sync_times.record(started.elapsed());
        }
        Ok(())
    }

    /// How long this store's syncs take, shared with whoever reports it.
    pub fn sync_times(&self) -> Arc<SyncTimes> {
        self.sync_times.clone()
    }
}

impl LogStore for DiskLogStore {
    fn hard_state(&self) -> Result<HardState> {
        Ok(self.meta.state().hard_state)
    }

    fn set_hard_state(&mut self, state: HardState) -> Result<()> {
        if state != self.meta.state().hard_state {
            let meta = MetaState {
                hard_state: state,
                ..*self.meta.state()
            };
            self.meta.write(meta)?;
        }
        Ok(())
    }

    fn base(&self) -> LogPosition {
        self.index.base()
    }

    fn last_position(&self) -> Result<LogPosition> {
        Ok(self.index.last())
    }

    fn term_at(&self, index: Index) -> Result<Option<Term>> {
        Ok(self.index.term_at(index))
    }

    fn entries(&self, from: Index, to: Index, max: usize) -> Result<Vec<Entry>> {
        let (start, end) = self.index.clamp(from, to, max);
        let cached_from = self
            .cache
            .first_index()
            .map_or(end, |first| first.clamp(start, end));
        let mut entries = self.read_entries(start, cached_from)?;
        entries.extend(self.cache.range(cached_from, end));
        Ok(entries)
    }

    /// Measures entries by their records (never smaller than their
    /// encoding) from the index, so it reads only the entries it returns.
    fn entries_within(
        &self,
        from: Index,
        to: Index,
        max: usize,
        max_bytes: usize,
    ) -> Result<Vec<Entry>> {
        let (start, end) = self.index.clamp(from, to, max);
        if self.run_len(start, end) <= max_bytes {
            return self.entries(start, end, max);
        }
        let sizes = (start..end).map(|index| self.record_len(index));
        let count = within_budget(sizes, max_bytes) as Index;
        self.entries(start, start + count, max)
    }

    fn append(&mut self, entries: &[Entry]) -> Result<()> {
        check_continues(self.index.last().index, entries)?;
        let mut written = 0;
        while written < entries.len() {
            written += self.append_to_segment(&entries[written..])?;
        }
        Ok(())
    }

    fn truncate_from(&mut self, index: Index) -> Result<()> {
        let base = self.index.base().index;
        if index <= base {
            return Err(Error::Storage(format!(
                "cannot cut the log at {index}: it is compacted up to {base}"
            )));
        }
        if index > self.index.last().index {
            return Ok(());
        }
        let position = self.segment_of(index);
        let offset = self.index.offset(index);
        self.remove_segments_after(position)?;
        self.segments[position].truncate(offset)?;
        self.index.truncate_from(index);
        self.cache.truncate_from(index);
        Ok(())
    }

    fn sync(&mut self) -> Result<()> {
        Ok(self.sync_all()?)
    }

    fn snapshot(&self) -> Result<Option<Snapshot>> {
        Ok(self.snapshot.clone())
    }

    fn save_snapshot(&mut self, snapshot: Snapshot, compact_to: Index) -> Result<()> {
        check_compaction(self, &snapshot, compact_to)?;
        // The snapshot must never be ahead of the durable log.
        self.sync_all()?;
        let term = self
            .index
            .term_at(compact_to)
            .unwrap_or(self.index.base().term);
        let base = LogPosition::new(term, compact_to);
        let index = snapshot.meta.position.index;
        snapshot_file::write(&self.dir, &snapshot)?;
        self.commit_base(base, Some(index))?;
        self.compact(base)?;
        self.snapshot = Some(snapshot);
        snapshot_file::remove_others(&self.dir, Some(index))?;
        Ok(())
    }

    fn install_snapshot(&mut self, snapshot: Snapshot) -> Result<()> {
        let position = snapshot.meta.position;
        let held = self.index.term_at(position.index) == Some(position.term);
        snapshot_file::write(&self.dir, &snapshot)?;
        self.commit_base(position, Some(position.index))?;
        if held {
            self.compact(position)?;
        } else {
            self.restart_log(position)?;
        }
        self.snapshot = Some(snapshot);
        snapshot_file::remove_others(&self.dir, Some(position.index))?;
        Ok(())
    }

    fn clear(&mut self) -> Result<()> {
        self.restart_log(LogPosition::default())?;
        self.commit_base(LogPosition::default(), None)?;
        self.snapshot = None;
        snapshot_file::remove_others(&self.dir, None)?;
        Ok(())
    }
}
