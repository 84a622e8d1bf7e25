//! The store directory is its owner's alone: what the store creates is
//! `0700` and `0600` whatever the umask, a directory others could write to
//! or another user owns is refused, and a symbolic link in place of a store
//! file is refused rather than followed.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;

use bytes::Bytes;
use mosaik_core::{LogPosition, LogStore, Snapshot};
use mosaik_store::{DiskLogStore, StoreError};

use crate::common::*;

/// A uid no test user has.
const OTHER_UID: u32 = 12345;

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// Every file in `dir` with its mode.
fn file_modes(dir: &Path) -> Vec<(String, u32)> {
    let mut modes: Vec<(String, u32)> = fs::read_dir(dir)
        .unwrap()
        .map(|item| item.unwrap())
        .map(|item| (item.file_name().into_string().unwrap(), mode(&item.path())))
        .collect();
    modes.sort();
    modes
}

/// Sets the process's umask, returning the previous one.
fn set_umask(mask: u32) -> u32 {
    // SAFETY: umask only swaps the process's file mode creation mask.
    unsafe { libc::umask(mask as libc::mode_t) as u32 }
}

/// A store in `path` with several segments, the meta file, its LOCK and a
/// snapshot file (written as a temporary file, then renamed: its mode is the
/// temporary's), dropped.
fn fill(path: &Path) {
    let mut store = store_with(path, &entries(1, 1..=30));
    let snapshot = Snapshot::new(LogPosition::new(1, 20), Bytes::from_static(b"state"));
    store.save_snapshot(snapshot, 10).unwrap();
    store.append(&entries(1, 31..=40)).unwrap();
    store.sync().unwrap();
}

fn assert_private(path: &Path) {
    let files = file_modes(path);
    let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    assert!(
        names.contains(&"LOCK") && names.contains(&"meta"),
        "{names:?}"
    );
    assert!(
        names.iter().any(|name| name.ends_with(".snap")),
        "{names:?}"
    );
    assert!(names.iter().filter(|name| name.ends_with(".log")).count() > 1);
    for (name, mode) in files {
        assert_eq!(mode, 0o600, "{name} has mode {mode:o}");
    }
}

fn assert_refused(error: StoreError, path: &Path, reason: &str) {
    assert!(matches!(error, StoreError::Unsafe { .. }), "{error}");
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains(reason), "{message}");
}

#[test]
fn every_directory_and_file_the_store_creates_is_private_whatever_the_umask() {
    // One test sets both masks in turn: the umask is the process's.
    for mask in [0o022, 0o000] {
        let root = tempfile::tempdir().unwrap();
        let store = root.path().join("a").join("store");
        let previous = set_umask(mask);
        fill(&store);
        set_umask(previous);
        assert_eq!(mode(&root.path().join("a")), 0o700, "umask {mask:o}");
        assert_eq!(mode(&store), 0o700, "umask {mask:o}");
        assert_private(&store);
    }
}

#[test]
fn files_an_older_version_left_readable_are_made_private_at_open() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path());
    for (name, _) in file_modes(dir.path()) {
        fs::set_permissions(dir.path().join(name), fs::Permissions::from_mode(0o644)).unwrap();
    }
    let store = open(dir.path());
    assert_eq!(
        store.snapshot().unwrap().map(|s| s.meta.position.index),
        Some(20)
    );
    assert_private(dir.path());
}

#[test]
fn a_directory_group_or_others_can_write_to_is_refused() {
    for unsafe_mode in [0o777, 0o770, 0o702, 0o1777] {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(unsafe_mode)).unwrap();
        let error = DiskLogStore::open(dir.path(), tiny()).unwrap_err();
        assert_refused(error, dir.path(), &format!("mode {unsafe_mode:04o}"));
        assert!(
            file_modes(dir.path()).is_empty(),
            "nothing is created in it"
        );
    }
    // Readable by others is the owner's choice: the files stay private.
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fill(dir.path());
    assert_private(dir.path());
}

#[test]
fn a_directory_owned_by_another_user_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    if let Err(e) = std::os::unix::fs::chown(dir.path(), Some(OTHER_UID), None) {
        eprintln!("skipped: cannot chown to another user here ({e}); run as root");
        return;
    }
    let error = DiskLogStore::open(dir.path(), tiny()).unwrap_err();
    assert_refused(error, dir.path(), &format!("owned by uid {OTHER_UID}"));
    assert!(
        file_modes(dir.path()).is_empty(),
        "nothing is created in it"
    );
}

/// Replaces `name` in the filled store at `dir` by a symbolic link to a copy
/// of it outside; opening must refuse the link and leave the copy alone.
fn refuses_a_link_in_place_of(name: &str) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("store");
    fill(&dir);
    let link = dir.join(name);
    let target = root.path().join("target");
    fs::rename(&link, &target).unwrap();
    fs::set_permissions(&target, fs::Permissions::from_mode(0o644)).unwrap();
    let before = fs::read(&target).unwrap();
    symlink(&target, &link).unwrap();

    let error = DiskLogStore::open(&dir, tiny()).unwrap_err();
    assert_refused(error, &link, "symbolic link");
    assert_eq!(
        fs::read(&target).unwrap(),
        before,
        "{name}: the target was written"
    );
    assert_eq!(
        mode(&target),
        0o644,
        "{name}: the target's mode was changed"
    );
}

#[test]
fn a_symbolic_link_in_place_of_a_segment_meta_lock_or_snapshot_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fill(dir.path());
    let segment = segment_files(dir.path())[0].clone();
    let snapshot = files_ending(dir.path(), ".snap").remove(0);
    let segment = segment.file_name().unwrap().to_str().unwrap().to_string();
    for name in [segment.as_str(), "meta", "LOCK", snapshot.as_str()] {
        refuses_a_link_in_place_of(name);
    }
}

#[test]
fn a_dangling_link_planted_as_lock_is_refused_and_nothing_is_created() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("store");
    fs::create_dir(&dir).unwrap();
    let target = root.path().join("created-through-the-link");
    symlink(&target, dir.join("LOCK")).unwrap();
    let error = DiskLogStore::open(&dir, tiny()).unwrap_err();
    assert_refused(error, &dir.join("LOCK"), "symbolic link");
    assert!(!target.exists());
}
