//! What open does with torn tails and damaged logs.

use std::fs::{self, OpenOptions};
use std::io::Write;

use mosaik_core::{HardState, LogPosition, LogStore, PeerId};
use mosaik_store::{DiskLogStore, DiskOptions, StoreError, TornTail};

use crate::common::*;

#[test]
fn a_record_cut_mid_way_is_cut_off_reported_and_the_log_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with(dir.path(), &entries(1, 1..=30)));
    let last = segment_files(dir.path()).pop().unwrap();
    let len = fs::metadata(&last).unwrap().len();
    let last_record = *record_offsets(&last).last().unwrap();
    OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 3)
        .unwrap();

    let (mut store, recovery) = open_with_recovery(dir.path());
    let expected = TornTail {
        segment: last.clone(),
        offset: last_record,
        bytes_cut: len - 3 - last_record,
    };
    assert_eq!(recovery.torn_tail, Some(expected));
    assert_eq!(recovery.entries, 29);
    assert_eq!(fs::metadata(&last).unwrap().len(), last_record);
    store.append(&entries(2, 30..=31)).unwrap();
    store.sync().unwrap();
    drop(store);

    let (store, recovery) = open_with_recovery(dir.path());
    assert_eq!(recovery.torn_tail, None);
    assert_eq!(store.last_position().unwrap(), LogPosition::new(2, 31));
}

#[test]
fn garbage_after_the_last_record_is_cut_off_and_reported() {
    let short_length_bad_crc = [4, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9, 9, 9, 9];
    let huge_length = [0xff; 37];
    for garbage in [&short_length_bad_crc[..], &huge_length[..], &[7, 7][..]] {
        let dir = tempfile::tempdir().unwrap();
        drop(store_with(dir.path(), &entries(1, 1..=20)));
        let last = segment_files(dir.path()).pop().unwrap();
        let len = fs::metadata(&last).unwrap().len();
        OpenOptions::new()
            .append(true)
            .open(&last)
            .unwrap()
            .write_all(garbage)
            .unwrap();

        let (mut store, recovery) = open_with_recovery(dir.path());
        let torn = recovery.torn_tail.unwrap();
        assert_eq!((torn.offset, torn.bytes_cut), (len, garbage.len() as u64));
        assert_eq!(all_entries(&store), entries(1, 1..=20));
        store.append(&entries(1, 21..=21)).unwrap();
        assert_eq!(store.last_position().unwrap(), LogPosition::new(1, 21));
    }
}

/// Opens `dir` expecting a `Corrupt` error at `offset` of `segment`.
fn assert_corrupt_at(dir: &std::path::Path, segment: &std::path::Path, offset: u64) {
    let error = DiskLogStore::open(dir, tiny()).unwrap_err();
    let message = error.to_string();
    match error {
        StoreError::Corrupt {
            segment: found,
            offset: at,
            ..
        } => assert_eq!((found.as_path(), at), (segment, offset)),
        other => panic!("expected a corrupt log, got {other}"),
    }
    assert!(
        message.contains(&segment.display().to_string()),
        "{message}"
    );
    assert!(message.contains(&format!("at byte {offset}")), "{message}");
}

#[test]
fn a_flipped_byte_in_a_non_final_segment_is_refused_naming_segment_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with(dir.path(), &entries(1, 1..=30)));
    let first = segment_files(dir.path())[0].clone();
    let offset = record_offsets(&first)[1];
    flip_payload_byte(&first, offset);
    assert_corrupt_at(dir.path(), &first, offset);
}

#[test]
fn a_flipped_byte_mid_final_segment_before_valid_records_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let roomy = DiskOptions {
        segment_bytes: 1 << 20,
        ..tiny()
    };
    let (mut store, _) = DiskLogStore::open(dir.path(), roomy).unwrap();
    store.append(&entries(1, 1..=10)).unwrap();
    store.sync().unwrap();
    drop(store);
    let last = segment_files(dir.path()).pop().unwrap();
    let offset = record_offsets(&last)[4];
    flip_payload_byte(&last, offset);
    assert_corrupt_at(dir.path(), &last, offset);
}

#[test]
fn a_missing_middle_segment_is_refused_as_a_discontinuity() {
    let dir = tempfile::tempdir().unwrap();
    drop(store_with(dir.path(), &entries(1, 1..=30)));
    let segments = segment_files(dir.path());
    fs::remove_file(&segments[1]).unwrap();
    assert_corrupt_at(dir.path(), &segments[2], 0);
    let message = DiskLogStore::open(dir.path(), tiny())
        .unwrap_err()
        .to_string();
    assert!(message.contains("discontinuity"), "{message}");
}

#[test]
fn a_record_damaged_while_running_fails_the_read_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), &entries(1, 1..=30));
    let first = segment_files(dir.path())[0].clone();
    let offset = record_offsets(&first)[1];
    flip_payload_byte(&first, offset);
    let error = store.entries(1, 4, 10).unwrap_err().to_string();
    assert!(error.contains(&first.display().to_string()), "{error}");
    assert!(error.contains(&format!("at byte {offset}")), "{error}");
}

/// A process that crashed between its writes and their sync leaves them in
/// the page cache, where a restart reads them back: open syncs them before
/// the store serves them (a vote answered again, entries a leader counts as
/// durable), and the hard state written next goes to the other slot than
/// the one it found.
#[test]
fn open_syncs_what_a_crashed_process_left_unsynced() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = store_with(dir.path(), &entries(1, 1..=10));
    let voted = |term| HardState {
        term,
        vote: Some(PeerId([term as u8; 32])),
        ..HardState::default()
    };
    store.set_hard_state(voted(2)).unwrap();
    store.append(&entries(2, 11..=12)).unwrap();
    drop(store); // no sync

    let mut store = open(dir.path());
    let (_, syncs, _) = store.sync_times().read();
    assert_eq!(syncs, 1, "one sync at open covers the segments and meta");
    assert_eq!(store.hard_state().unwrap(), voted(2));
    assert_eq!(store.last_position().unwrap(), LogPosition::new(2, 12));

    store.set_hard_state(voted(3)).unwrap();
    drop(store); // no sync: the slot holding term 2 must still be there
    let reopened = open(dir.path());
    assert!(matches!(reopened.hard_state().unwrap().term, 2 | 3));
}
