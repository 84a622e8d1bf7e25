//! Saving and installing snapshots, compaction and clearing.

use std::fs;

use bytes::Bytes;
use mosaik_core::{HardState, LogPosition, LogStore, Snapshot};

use crate::common::*;

fn snapshot_at(term: u64, index: u64) -> Snapshot {
    Snapshot::new(
        LogPosition::new(term, index),
        Bytes::from(format!("state at {index}")),
    )
}

#[test]
fn save_snapshot_compacts_removes_old_segments_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = entries(1, 1..=20);
    log.extend(entries(2, 21..=40));
    let mut store = store_with(dir.path(), &log);
    let segments_before = segment_files(dir.path()).len();

    store.save_snapshot(snapshot_at(2, 30), 25).unwrap();
    assert_eq!(store.base(), LogPosition::new(2, 25));
    assert_eq!(store.term_at(25).unwrap(), Some(2));
    assert_eq!(store.term_at(24).unwrap(), None);
    assert_eq!(all_entries(&store), entries(2, 26..=40));
    assert!(store.truncate_from(25).is_err());
    let segments = segment_files(dir.path());
    assert!(segments.len() < segments_before);
    assert!(first_index(&segments[0]) <= 26);
    assert!(segments
        .get(1)
        .is_none_or(|second| first_index(second) > 26));

    store.save_snapshot(snapshot_at(2, 35), 30).unwrap();
    assert_eq!(files_ending(dir.path(), ".snap").len(), 1);
    drop(store);

    let (store, recovery) = open_with_recovery(dir.path());
    assert_eq!(store.base(), LogPosition::new(2, 30));
    assert_eq!(store.snapshot().unwrap(), Some(snapshot_at(2, 35)));
    assert_eq!(all_entries(&store), entries(2, 31..=40));
    assert_eq!(recovery.entries, 10);
}

#[test]
fn save_snapshot_refuses_a_position_the_log_does_not_hold() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_with(dir.path(), &entries(1, 1..=10));
    assert!(store.save_snapshot(snapshot_at(2, 5), 5).is_err());
    assert!(store.save_snapshot(snapshot_at(1, 5), 6).is_err());
    assert!(store.save_snapshot(snapshot_at(1, 11), 5).is_err());
    assert_eq!(store.snapshot().unwrap(), None);
}

#[test]
fn install_snapshot_of_a_held_position_keeps_the_entries_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_with(dir.path(), &entries(1, 1..=20));
    store.install_snapshot(snapshot_at(1, 12)).unwrap();
    assert_eq!(store.base(), LogPosition::new(1, 12));
    assert_eq!(all_entries(&store), entries(1, 13..=20));
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.base(), LogPosition::new(1, 12));
    assert_eq!(all_entries(&store), entries(1, 13..=20));
    assert_eq!(store.snapshot().unwrap(), Some(snapshot_at(1, 12)));
}

#[test]
fn install_snapshot_of_a_foreign_position_drops_the_whole_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_with(dir.path(), &entries(1, 1..=20));
    store.install_snapshot(snapshot_at(9, 100)).unwrap();
    assert_eq!(store.last_position().unwrap(), LogPosition::new(9, 100));
    assert!(all_entries(&store).is_empty());
    assert!(segment_files(dir.path()).is_empty());
    store.append(&entries(9, 101..=102)).unwrap();
    assert_eq!(first_index(&segment_files(dir.path())[0]), 101);
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.base(), LogPosition::new(9, 100));
    assert_eq!(all_entries(&store), entries(9, 101..=102));
}

#[test]
fn an_install_interrupted_before_dropping_the_old_log_is_finished_at_open() {
    let crashed = tempfile::tempdir().unwrap();
    drop(store_with(crashed.path(), &entries(1, 1..=20)));
    let installed = tempfile::tempdir().unwrap();
    let mut store = open(installed.path());
    store.install_snapshot(snapshot_at(9, 15)).unwrap();
    drop(store);
    for name in [
        "meta".to_string(),
        "snapshot-00000000000000000015.snap".into(),
    ] {
        fs::copy(installed.path().join(&name), crashed.path().join(&name)).unwrap();
    }

    let (store, recovery) = open_with_recovery(crashed.path());
    assert_eq!(store.last_position().unwrap(), LogPosition::new(9, 15));
    assert_eq!(recovery.entries, 0);
    assert!(segment_files(crashed.path()).is_empty());
}

#[test]
fn clear_drops_log_and_snapshot_but_keeps_the_hard_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_with(dir.path(), &entries(1, 1..=20));
    let state = HardState {
        term: 5,
        vote: None,
        learner: false,
        life: 0,
    };
    store.set_hard_state(state).unwrap();
    store.save_snapshot(snapshot_at(1, 10), 10).unwrap();
    store.clear().unwrap();
    assert_eq!(store.last_position().unwrap(), LogPosition::default());
    assert_eq!(store.snapshot().unwrap(), None);
    assert!(segment_files(dir.path()).is_empty());
    assert!(files_ending(dir.path(), ".snap").is_empty());
    drop(store);
    let mut store = open(dir.path());
    assert_eq!(store.hard_state().unwrap(), state);
    assert_eq!(store.base(), LogPosition::default());
    store.append(&entries(6, 1..=2)).unwrap();
    assert_eq!(all_entries(&store), entries(6, 1..=2));
}
