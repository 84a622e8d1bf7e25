//! Opening a group's log store from what Python chose: in memory, or a
//! `DiskLogStore` directory (opened before the group starts, so that its
//! errors reach the caller of `join`).

use std::path::PathBuf;
use std::sync::Arc;

use mosaik_core::{Digest, InMemoryLogStore};
use mosaik_net::groups::GroupStore;
use mosaik_store::{DiskLogStore, DiskOptions, SyncTimes};
use pyo3::prelude::*;

use crate::errors::store_error;

/// A disk store's directory and segment size, as `mosaik.DiskLogStore` passes them.
pub type DiskSpec = (PathBuf, u64);

/// The store of the group `group_id` about to be joined, with the times of
/// its syncs when it is on disk; a directory that holds another group's log
/// is refused.
pub fn open_store(
    group_id: &Digest,
    disk: Option<DiskSpec>,
) -> PyResult<(GroupStore, Option<Arc<SyncTimes>>)> {
    let label = group_id.to_hex();
    let Some((path, segment_bytes)) = disk else {
        return Ok((Box::new(InMemoryLogStore::new()), None));
    };
    let options = DiskOptions {
        segment_bytes,
        ..DiskOptions::default()
    };
    let (store, recovery) = DiskLogStore::open(&path, options).map_err(store_error)?;
    store.claim(group_id.as_bytes()).map_err(store_error)?;
    log::info!(
        "group {label}: log store {} opened with {} entries in {} segments",
        path.display(),
        recovery.entries,
        recovery.segments
    );
    let sync_times = store.sync_times();
    Ok((Box::new(store), Some(sync_times)))
}
