//! Opening a group's log store from what Python chose: in memory, or a
//! `DiskLogStore` directory (whose opening errors become `ConfigError` or
//! `StorageError` here, before the group starts).

use std::path::PathBuf;

use mosaik_core::InMemoryLogStore;
use mosaik_net::groups::GroupStore;
use mosaik_store::{DiskLogStore, DiskOptions, StoreError};
use pyo3::prelude::*;

use crate::errors::{config_error, mosaik_error};

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

fn store_error(err: StoreError) -> PyErr {
    match err {
        StoreError::NotADirectory { .. } | StoreError::NotWritable { .. } => {
            config_error(err.to_string())
        }
        _ => Python::attach(|py| mosaik_error(py, "StorageError", (err.to_string(),))),
    }
}
