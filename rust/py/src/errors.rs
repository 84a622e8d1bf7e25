//! The one place where Rust errors become Python exceptions. Every class is
//! defined in Python (`mosaik/exceptions.py`) and imported here, so native
//! code raises exactly the classes users catch.

use mosaik_net::NetError;
use mosaik_store::StoreError;
use pyo3::prelude::*;

pyo3::import_exception!(mosaik.exceptions, CodecError);
pyo3::import_exception!(mosaik.exceptions, ConfigError);
pyo3::import_exception!(mosaik.exceptions, GroupTerminated);
pyo3::import_exception!(mosaik.exceptions, NetworkClosed);
pyo3::import_exception!(mosaik.exceptions, NetworkError);
pyo3::import_exception!(mosaik.exceptions, StorageError);

/// A `ConfigError`: a setting, address, key or name is invalid.
pub fn config_error(message: impl Into<String>) -> PyErr {
    ConfigError::new_err(message.into())
}

/// A `CodecError`: a value the codec cannot encode or decode.
pub fn codec_error(message: impl Into<String>) -> PyErr {
    CodecError::new_err(message.into())
}

/// Why a native operation failed; made into a Python exception only on a
/// thread that holds the GIL.
#[derive(Debug)]
pub enum Failure {
    Net(NetError),
    /// The group was left or its network closed.
    Terminated,
}

impl From<NetError> for Failure {
    fn from(e: NetError) -> Self {
        Failure::Net(e)
    }
}

impl Failure {
    pub fn into_err(self) -> PyErr {
        match self {
            Failure::Net(e) => net_error(e),
            Failure::Terminated => {
                GroupTerminated::new_err("the group was left or its network closed")
            }
        }
    }
}

/// A `NetError` as its Python exception: `ConfigError` for a bad setting,
/// `NetworkClosed`, else `NetworkError` with the peer's close code if any.
pub fn net_error(err: NetError) -> PyErr {
    match &err {
        NetError::Config(msg) => config_error(msg.clone()),
        NetError::Closed => NetworkClosed::new_err(err.to_string()),
        _ => NetworkError::new_err((err.to_string(), err.close_code())),
    }
}

/// A log store error: a directory that is not one or cannot be written is
/// a bad setting (`ConfigError`); a locked, damaged or foreign store is a
/// `StorageError`.
pub fn store_error(err: StoreError) -> PyErr {
    match err {
        StoreError::NotADirectory { .. } | StoreError::NotWritable { .. } => {
            config_error(err.to_string())
        }
        _ => StorageError::new_err(err.to_string()),
    }
}
