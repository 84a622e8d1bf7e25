//! The one place where Rust errors become the Python exceptions defined in
//! `mosaik/exceptions.py`.

use mosaik_net::NetError;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// Builds an instance of `mosaik.exceptions.<name>(*args)` as a `PyErr`.
pub fn mosaik_error<'py, A>(py: Python<'py>, name: &str, args: A) -> PyErr
where
    A: pyo3::call::PyCallArgs<'py>,
{
    let made = py
        .import("mosaik.exceptions")
        .and_then(|m| m.getattr(name))
        .and_then(|cls| cls.call1(args));
    match made {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

pub fn config_error(message: impl Into<String>) -> PyErr {
    let message = message.into();
    Python::attach(|py| mosaik_error(py, "ConfigError", (message,)))
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
    pub fn into_pyerr(self, py: Python<'_>) -> PyErr {
        match self {
            Failure::Net(e) => net_error(e),
            Failure::Terminated => mosaik_error(
                py,
                "GroupTerminated",
                ("the group was left or its network closed".to_string(),),
            ),
        }
    }

    /// On a thread that may call into Python.
    pub fn into_err(self) -> PyErr {
        Python::attach(|py| self.into_pyerr(py))
    }
}

/// Maps a `NetError` to its Python exception.
pub fn net_error(err: NetError) -> PyErr {
    Python::attach(|py| match &err {
        NetError::Config(msg) => mosaik_error(py, "ConfigError", (msg.clone(),)),
        NetError::Closed => mosaik_error(py, "NetworkClosed", (err.to_string(),)),
        NetError::Io(_) => PyRuntimeError::new_err(err.to_string()),
        _ => mosaik_error(py, "NetworkError", (err.to_string(), err.close_code())),
    })
}
