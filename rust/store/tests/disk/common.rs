//! Helpers shared by the tests: entries, options, opening and file surgery.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use mosaik_core::{Entry, EntryKind, Index, LogStore, Term};
use mosaik_store::{DiskLogStore, DiskOptions, Recovery};

/// Segments of a few records and a cache of a few entries, so tests cross
/// segment boundaries and read from disk.
pub fn tiny() -> DiskOptions {
    DiskOptions {
        segment_bytes: 200,
        cache_entries: 4,
        cache_bytes: 1024,
    }
}

pub fn entry(term: Term, index: Index) -> Entry {
    Entry {
        term,
        index,
        kind: EntryKind::Command(Bytes::from(format!("command {index} of term {term}"))),
    }
}

pub fn entries(term: Term, indices: std::ops::RangeInclusive<Index>) -> Vec<Entry> {
    indices.map(|index| entry(term, index)).collect()
}

pub fn open(path: &Path) -> DiskLogStore {
    open_with_recovery(path).0
}

pub fn open_with_recovery(path: &Path) -> (DiskLogStore, Recovery) {
    DiskLogStore::open(path, tiny()).unwrap()
}

/// Every entry the store holds.
pub fn all_entries(store: &impl LogStore) -> Vec<Entry> {
    store.entries(0, Index::MAX, usize::MAX).unwrap()
}

/// A store in `path` holding `entries`, synced.
pub fn store_with(path: &Path, entries: &[Entry]) -> DiskLogStore {
    let mut store = open(path);
    store.append(entries).unwrap();
    store.sync().unwrap();
    store
}

/// Segment files in `dir`, in log order.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|item| item.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    files.sort();
    files
}

/// Files in `dir` whose name ends with `suffix`.
pub fn files_ending(dir: &Path, suffix: &str) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|item| item.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(suffix))
        .collect()
}

/// First index of a segment file, from its name.
pub fn first_index(segment: &Path) -> Index {
    let stem = segment.file_stem().unwrap().to_str().unwrap();
    stem.parse().unwrap()
}

/// Byte offsets of the records in a segment file.
pub fn record_offsets(segment: &Path) -> Vec<u64> {
    let bytes = fs::read(segment).unwrap();
    let mut offsets = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        offsets.push(offset as u64);
        let len = u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap());
        offset += 8 + len as usize;
    }
    offsets
}

/// Flips one payload byte of the record at `offset` in `segment`.
pub fn flip_payload_byte(segment: &Path, offset: u64) {
    let mut bytes = fs::read(segment).unwrap();
    bytes[offset as usize + 10] ^= 0x5a;
    fs::write(segment, bytes).unwrap();
}
