//! Python classes for identifiers: `Digest` (also `UniqueId`, `NetworkId`,
//! `GroupId`) and `PeerId`.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use mosaik_core::ids::{Digest, PeerId};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::errors::config_error;

pub fn hash_of<T: Hash>(value: &T) -> u64 {
    let mut h = DefaultHasher::new();
    value.hash(&mut h);
    h.finish()
}

/// A 32-byte blake3 value.
#[pyclass(name = "Digest", module = "mosaik", frozen, eq, ord, from_py_object)]
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PyDigest(pub Digest);

#[pymethods]
impl PyDigest {
    /// A 64-char hex string is decoded; any other string is hashed.
    #[staticmethod]
    fn from_str(text: &str) -> Self {
        PyDigest(Digest::from_text(text))
    }

    /// 32 bytes are taken as-is; any other length is hashed.
    #[staticmethod]
    fn from_bytes(data: &[u8]) -> Self {
        PyDigest(Digest::from_bytes(data))
    }

    /// blake3(self ‖ info); info is bytes, str (UTF-8) or a Digest.
    fn derive(&self, info: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(PyDigest(self.0.derive(&info_bytes(info)?)))
    }

    fn hashed(&self) -> Self {
        PyDigest(self.0.hashed())
    }

    fn hex(&self) -> String {
        self.0.to_hex()
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0 .0)
    }

    fn __str__(&self) -> String {
        self.0.to_hex()
    }

    fn __repr__(&self) -> String {
        format!("Digest('{}')", self.0.to_hex())
    }

    fn __hash__(&self) -> u64 {
        hash_of(&self.0)
    }
}

fn info_bytes(info: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(d) = info.cast::<PyDigest>() {
        return Ok(d.get().0 .0.to_vec());
    }
    if let Ok(s) = info.cast::<PyString>() {
        return Ok(s.to_str()?.as_bytes().to_vec());
    }
    if let Ok(b) = info.extract::<Vec<u8>>() {
        if !info.is_instance_of::<pyo3::types::PyList>() {
            return Ok(b);
        }
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "derive() takes bytes, str or Digest, not {}",
        info.get_type().name()?
    )))
}

/// A node's ed25519 public key.
#[pyclass(name = "PeerId", module = "mosaik", frozen, eq, ord, from_py_object)]
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PyPeerId(pub PeerId);

#[pymethods]
impl PyPeerId {
    /// Reads 64 hex characters.
    #[staticmethod]
    fn from_hex(text: &str) -> PyResult<Self> {
        PeerId::from_hex(text).map(PyPeerId).ok_or_else(|| {
            config_error(format!(
                "invalid peer id {text:?}: expected 64 hex characters"
            ))
        })
    }

    /// Reads the 32 bytes of an ed25519 public key.
    #[staticmethod]
    fn from_bytes(data: &[u8]) -> PyResult<Self> {
        <[u8; 32]>::try_from(data)
            .map(|raw| PyPeerId(PeerId(raw)))
            .map_err(|_| {
                config_error(format!(
                    "invalid peer id: {} bytes, expected 32",
                    data.len()
                ))
            })
    }

    fn __bytes__<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.0 .0)
    }

    fn __str__(&self) -> String {
        self.0.to_hex()
    }

    fn __repr__(&self) -> String {
        format!("PeerId('{}')", self.0.to_hex())
    }

    fn __hash__(&self) -> u64 {
        hash_of(&self.0)
    }
}
