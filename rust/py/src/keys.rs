//! Group secrets from operator input: `mosaik.GroupKey.from_secret` calls
//! `group_secret`, which stretches passphrases with the GIL released.

use mosaik_core::passphrase::{group_secret_from_bytes, group_secret_from_text};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::errors::config_error;
use crate::ids::PyDigest;

/// What `group_secret` was given, copied out of Python so that the
/// derivation can run without the GIL.
enum Secret {
    Text(String),
    Bytes(Vec<u8>),
}

/// 64 hex characters or 32 bytes are the secret as they are; any other str
/// or bytes is a passphrase, stretched with Argon2id salted by `network`.
#[pyfunction]
pub fn group_secret(
    py: Python<'_>,
    secret: &Bound<'_, PyAny>,
    network: Option<String>,
) -> PyResult<PyDigest> {
    let secret = if let Ok(text) = secret.cast::<PyString>() {
        Secret::Text(text.to_str()?.to_owned())
    } else if let Ok(data) = secret.cast::<PyBytes>() {
        Secret::Bytes(data.as_bytes().to_vec())
    } else {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "a group secret is str or bytes, not {}",
            secret.get_type().name()?
        )));
    };
    let network = network.as_deref();
    py.detach(|| match &secret {
        Secret::Text(text) => group_secret_from_text(text, network),
        Secret::Bytes(data) => group_secret_from_bytes(data, network),
    })
    .map(PyDigest)
    .map_err(|e| config_error(e.to_string()))
}
