//! Opening refuses directories that are locked, not directories or not writable.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use mosaik_core::LogStore;
use mosaik_store::{DiskLogStore, StoreError};

use crate::common::*;

#[test]
fn a_second_open_of_a_locked_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path());
    let error = DiskLogStore::open(dir.path(), tiny()).unwrap_err();
    assert!(matches!(error, StoreError::Locked { .. }), "{error}");
    assert!(error.to_string().contains("in use by another process"));
    drop(first);
    open(dir.path());
}

#[test]
fn a_path_that_is_a_file_is_not_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    fs::write(&file, b"x").unwrap();
    let error = DiskLogStore::open(&file, tiny()).unwrap_err();
    assert!(matches!(error, StoreError::NotADirectory { .. }), "{error}");
}

#[test]
fn a_missing_directory_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a").join("b");
    let mut store = open(&nested);
    store.append(&entries(1, 1..=2)).unwrap();
    assert!(nested.join("LOCK").exists());
}

#[test]
fn a_directory_that_cannot_be_created_is_not_writable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    fs::write(&file, b"x").unwrap();
    let error = DiskLogStore::open(file.join("store"), tiny()).unwrap_err();
    assert!(matches!(error, StoreError::NotWritable { .. }), "{error}");
}

#[test]
fn an_unwritable_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("store");
    fs::create_dir(&target).unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o555)).unwrap();
    if fs::write(target.join("probe"), b"x").is_ok() {
        eprintln!("skipped: permissions do not stop writes here (running as root?)");
        return;
    }
    let error = DiskLogStore::open(&target, tiny()).unwrap_err();
    assert!(matches!(error, StoreError::NotWritable { .. }), "{error}");
    fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn store_errors_become_storage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let _held = open(dir.path());
    let error: mosaik_core::Error = DiskLogStore::open(dir.path(), tiny()).unwrap_err().into();
    match error {
        mosaik_core::Error::Storage(message) => assert!(message.contains("in use")),
        other => panic!("expected a storage error, got {other}"),
    }
}

#[test]
fn a_directory_claimed_by_one_group_refuses_another() {
    let dir = tempfile::tempdir().unwrap();
    let (ours, theirs) = ([7u8; 32], [9u8; 32]);
    let store = open(dir.path());
    store.claim(&ours).unwrap();
    store.claim(&ours).unwrap();
    let error = store.claim(&theirs).unwrap_err();
    assert!(matches!(error, StoreError::OtherGroup { .. }), "{error}");
    let text = error.to_string();
    assert!(
        text.contains(&"07".repeat(32)) && text.contains(&"09".repeat(32)),
        "{text}"
    );
    drop(store);
    // The claim survives a reopen; a damaged claim file is refused.
    let store = open(dir.path());
    assert!(store.claim(&theirs).is_err());
    store.claim(&ours).unwrap();
    drop(store);
    fs::write(dir.path().join("group"), b"short").unwrap();
    let error = open(dir.path()).claim(&ours).unwrap_err();
    assert!(matches!(error, StoreError::Damaged { .. }), "{error}");
}
