//! Loading the log at open: scanning the segments in order, cutting a torn
//! tail off the last one, refusing damage anywhere else, indexing the
//! entries past the base and removing segments that hold none of them.

use std::collections::VecDeque;
use std::path::PathBuf;

use mosaik_core::{Entry, Index, LogPosition};

use crate::dir::DataDir;
use crate::error::StoreError;
use crate::index::EntryIndex;
use crate::record::{self, Bad, BadRecord};
use crate::segment::{self, Segment};

/// A partly written record cut off the end of the last segment at open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub segment: PathBuf,
    /// Where the segment now ends: the start of the partial record.
    pub offset: u64,
    pub bytes_cut: u64,
}

/// What `DiskLogStore::open` found and repaired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Entries in the log after the base.
    pub entries: u64,
    /// Segment files the log is kept in.
    pub segments: usize,
    pub torn_tail: Option<TornTail>,
}

/// The log as found on disk.
#[derive(Debug)]
pub(crate) struct LoadedLog {
    pub segments: VecDeque<Segment>,
    pub index: EntryIndex,
    pub torn_tail: Option<TornTail>,
}

/// Loads the segments of `dir` for a log compacted up to `base`.
pub(crate) fn load_log(dir: &DataDir, base: LogPosition) -> Result<LoadedLog, StoreError> {
    let files = segment_files(dir)?;
    let last = files.len().saturating_sub(1);
    let mut loader = Loader {
        index: EntryIndex::new(base),
        conflict: false,
    };
    let mut torn_tail = None;
    let mut found = Vec::with_capacity(files.len());
    for (position, (first_index, path)) in files.into_iter().enumerate() {
        let mut segment = Segment::open(path, first_index)?;
        let scan = record::scan(&segment.read_all()?);
        loader.add_segment(&segment, &scan.records)?;
        if let Some(bad) = scan.bad {
            torn_tail = Some(cut_torn_tail(&mut segment, &bad, position == last)?);
        }
        found.push((segment, scan.records.len() as u64));
    }
    Ok(LoadedLog {
        segments: keep_useful(found, base, loader.conflict)?,
        index: loader.index,
        torn_tail,
    })
}

/// Segment files of `dir` with their first index, in log order.
fn segment_files(dir: &DataDir) -> Result<Vec<(Index, PathBuf)>, StoreError> {
    let mut files: Vec<(Index, PathBuf)> = dir
        .file_names()?
        .iter()
        .filter_map(|name| segment::parse_name(name).map(|first| (first, dir.join(name))))
        .collect();
    files.sort_unstable_by_key(|(first, _)| *first);
    Ok(files)
}

/// Builds the index while checking that the records continue each other.
struct Loader {
    index: EntryIndex,
    /// The log holds the base index under another term: a snapshot install
    /// was interrupted before it removed the old log, so nothing after the
    /// base is indexed (the base entry comes before all of them).
    conflict: bool,
}

impl Loader {
    fn add_segment(
        &mut self,
        segment: &Segment,
        records: &[(usize, Entry)],
    ) -> Result<(), StoreError> {
        for (expected, (offset, entry)) in (segment.first_index()..).zip(records) {
            let offset = *offset as u64;
            let added = if entry.index == expected {
                self.add_entry(entry, offset)
            } else {
                Err(format!(
                    "expected entry {expected}, found entry {}",
                    entry.index
                ))
            };
            added.map_err(|reason| corrupt(segment, offset, reason))?;
        }
        Ok(())
    }

    fn add_entry(&mut self, entry: &Entry, offset: u64) -> Result<(), String> {
        let base = self.index.base();
        let next = self.index.last().index + 1;
        let in_order = entry.index == next || (self.index.len() == 0 && entry.index < next);
        if !in_order && !self.conflict {
            return Err(format!(
                "index discontinuity: expected entry {next}, found entry {}",
                entry.index
            ));
        }
        if entry.index == base.index && entry.term != base.term {
            log::warn!(
                "the log holds entry {} of term {} but the base is of term {}: \
                 finishing an interrupted snapshot install by dropping the old log",
                entry.index,
                entry.term,
                base.term
            );
            self.conflict = true;
        }
        if entry.index > base.index && !self.conflict {
            self.index.push(entry.term, offset);
        }
        Ok(())
    }
}

/// Cuts the last segment at a torn record; refuses any other bad record.
fn cut_torn_tail(
    segment: &mut Segment,
    bad: &BadRecord,
    is_last: bool,
) -> Result<TornTail, StoreError> {
    let offset = bad.offset as u64;
    if !is_last || !bad.is_torn() {
        return Err(corrupt(segment, offset, describe(bad)));
    }
    let bytes_cut = segment.len() - offset;
    segment.truncate(offset)?;
    segment.sync()?;
    log::warn!(
        "log segment {} ended in a partly written record: cut {bytes_cut} bytes at byte {offset}",
        segment.path().display()
    );
    Ok(TornTail {
        segment: segment.path().to_path_buf(),
        offset,
        bytes_cut,
    })
}

fn describe(bad: &BadRecord) -> String {
    match bad.reason {
        Bad::Checksum { .. } if bad.followed_by_valid => {
            format!("{} (valid records follow it)", bad.reason)
        }
        _ => bad.reason.to_string(),
    }
}

fn corrupt(segment: &Segment, offset: u64, reason: String) -> StoreError {
    StoreError::Corrupt {
        segment: segment.path().to_path_buf(),
        offset,
        reason,
    }
}

/// Keeps the segments holding entries after the base; removes the others
/// (empty, compacted away, or all of them after an interrupted install).
fn keep_useful(
    found: Vec<(Segment, u64)>,
    base: LogPosition,
    conflict: bool,
) -> Result<VecDeque<Segment>, StoreError> {
    let mut kept = VecDeque::with_capacity(found.len());
    for (segment, records) in found {
        let past_base = records > 0 && segment.first_index() + records > base.index + 1;
        if past_base && !conflict {
            kept.push_back(segment);
        } else {
            segment.remove()?;
        }
    }
    Ok(kept)
}
