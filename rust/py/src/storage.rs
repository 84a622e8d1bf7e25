//! Opening a group's log store from what Python chose: in memory, or a
//! `DiskLogStore` directory (opened before the group starts, so that its
//! errors reach the caller of `join`).

use std::path::PathBuf;

use mosaik_core::InMemoryLogStore;
use mosaik_net::groups::GroupStore;
use mosaik_store::{DiskLogStore, DiskOptions};
use pyo3::prelude::*;

use crate::errors::store_error;

/// A disk store's directory and segment size, as `mosaik.DiskLogStore` passes them.
pub type DiskSpec = (PathBuf, u64);

/// The store of a group about to be joined.
pub fn open_store(label: &str, disk: Option<DiskSpec>) -> PyResult<GroupStore> {
    let Some((path, segment_bytes)) = disk else {
        return Ok(Box::new(InMemoryLogStore::new()));
    };
    let options = DiskOptions {
        segment_bytes,
        ..DiskOptions::default()
    };
    let (store, recovery) = DiskLogStore::open(&path, options).map_err(store_error)?;
    log::info!(
        "group {label}: log store {} opened with {} entries in {} segments",
        path.display(),
        recovery.entries,
        recovery.segments
    );
    Ok(Box::new(store))
}
