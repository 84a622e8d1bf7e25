//! Appending, reading, truncating and reopening.

use mosaik_core::{HardState, LogPosition, LogStore, PeerId};

use crate::common::*;

#[test]
fn append_read_truncate_reopen_round_trips_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_with(dir.path(), &entries(1, 1..=50));
    assert!(segment_files(dir.path()).len() > 5);
    assert_eq!(all_entries(&store), entries(1, 1..=50));
    assert_eq!(store.entries(10, 20, 3).unwrap(), entries(1, 10..=12));
    assert_eq!(store.term_at(50).unwrap(), Some(1));
    assert_eq!(store.term_at(51).unwrap(), None);

    store.truncate_from(23).unwrap();
    assert_eq!(store.last_position().unwrap(), LogPosition::new(1, 22));
    assert!(segment_files(dir.path())
        .iter()
        .all(|s| first_index(s) <= 23));
    store.append(&entries(2, 23..=40)).unwrap();
    store.sync().unwrap();
    drop(store);

    let (store, recovery) = open_with_recovery(dir.path());
    let mut expected = entries(1, 1..=22);
    expected.extend(entries(2, 23..=40));
    assert_eq!(all_entries(&store), expected);
    assert_eq!(recovery.entries, 40);
    assert_eq!(recovery.torn_tail, None);
    assert_eq!(recovery.segments, segment_files(dir.path()).len());
}

#[test]
fn reads_from_disk_and_from_the_cache_agree() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), &entries(1, 1..=30));
    let reopened_dir = tempfile::tempdir().unwrap();
    drop(store_with(reopened_dir.path(), &entries(1, 1..=30)));
    let cold = open(reopened_dir.path());
    for (from, to, max) in [(1, 31, 100), (5, 29, 7), (27, 31, 10), (0, 2, 1)] {
        assert_eq!(
            store.entries(from, to, max).unwrap(),
            cold.entries(from, to, max).unwrap()
        );
    }
}

#[test]
fn truncating_inside_a_segment_then_appending_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_with(dir.path(), &entries(1, 1..=12));
    let holding = segment_files(dir.path())[1].clone();
    let cut_at = first_index(&holding);
    store.truncate_from(cut_at).unwrap();
    assert_eq!(std::fs::metadata(&holding).unwrap().len(), 0);
    store.append(&entries(3, cut_at..=cut_at + 2)).unwrap();
    drop(store);
    let store = open(dir.path());
    assert_eq!(
        store.last_position().unwrap(),
        LogPosition::new(3, cut_at + 2)
    );
    assert_eq!(
        store.entries(cut_at, cut_at + 1, 1).unwrap(),
        entries(3, cut_at..=cut_at)
    );
}

#[test]
fn hard_state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path());
    assert_eq!(store.hard_state().unwrap(), HardState::default());
    for term in 1..=3 {
        let state = HardState {
            term,
            vote: Some(PeerId([term as u8; 32])),
            learner: term == 2,
            life: 0,
        };
        store.set_hard_state(state).unwrap();
        store.sync().unwrap();
    }
    let last = HardState {
        term: 4,
        vote: None,
        learner: true,
        life: 0,
    };
    store.set_hard_state(last).unwrap();
    store.sync().unwrap();
    drop(store);
    assert_eq!(open(dir.path()).hard_state().unwrap(), last);
}

#[test]
fn append_with_a_gap_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_with(dir.path(), &entries(1, 1..=3));
    assert!(store.append(&entries(1, 5..=6)).is_err());
    assert_eq!(store.last_position().unwrap(), LogPosition::new(1, 3));
}

#[test]
fn the_store_can_move_to_a_worker_thread() {
    fn boxed_for_a_worker(store: mosaik_store::DiskLogStore) -> Box<dyn LogStore + Send> {
        Box::new(store)
    }
    let dir = tempfile::tempdir().unwrap();
    let store = boxed_for_a_worker(store_with(dir.path(), &entries(1, 1..=3)));
    let last = std::thread::spawn(move || store.last_position().unwrap())
        .join()
        .unwrap();
    assert_eq!(last, LogPosition::new(1, 3));
}
