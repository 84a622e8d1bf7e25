//! `mosaik.Limits`: the caps of a network (defined in `mosaik_net::limits`),
//! as a frozen Python value made from keyword overrides of the defaults.
//! Bounds are `Limits::validate`'s; this module only converts the values.

use std::time::Duration;

use mosaik_net::Limits;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{config_error, net_error};
use crate::values::{duration, whole};

#[pyclass(name = "Limits", module = "mosaik", frozen, eq, hash, from_py_object)]
#[derive(Clone, PartialEq, Hash)]
pub struct PyLimits(pub Limits);

fn count(name: &str, value: &Bound<'_, PyAny>) -> PyResult<usize> {
    let n = whole(&format!("limit {name}"), value)?;
    usize::try_from(n).map_err(|_| config_error(format!("invalid limit {name} {n}: too large")))
}

fn rate(name: &str, value: &Bound<'_, PyAny>) -> PyResult<u32> {
    u32::try_from(count(name, value)?)
        .map_err(|_| config_error(format!("invalid limit {name}: above {}", u32::MAX)))
}

fn set(limits: &mut Limits, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
    match name {
        "max_pending_connections" => limits.max_pending_connections = count(name, value)?,
        "max_pending_connections_per_ip" => {
            limits.max_pending_connections_per_ip = count(name, value)?
        }
        "retry_above_handshakes" => limits.retry_above_handshakes = count(name, value)?,
        "refusals_per_ip_per_minute" => limits.refusals_per_ip_per_minute = rate(name, value)?,
        "max_concurrent_dials" => limits.max_concurrent_dials = count(name, value)?,
        "new_address_dials_per_second" => limits.new_address_dials_per_second = rate(name, value)?,
        "max_dial_backoff" => limits.max_dial_backoff = duration(name, value)?,
        "max_peers" => limits.max_peers = count(name, value)?,
        "max_new_peers_per_exchange" => limits.max_new_peers_per_exchange = count(name, value)?,
        other => return Err(config_error(format!("unknown limit {other:?}"))),
    }
    Ok(())
}

#[pymethods]
impl PyLimits {
    /// The default caps, with any of them overridden by keyword.
    #[new]
    #[pyo3(signature = (**overrides))]
    fn new(overrides: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        let mut limits = Limits::default();
        for (key, value) in overrides.into_iter().flatten() {
            set(&mut limits, &key.extract::<String>()?, &value)?;
        }
        limits.validate().map_err(net_error)?;
        Ok(PyLimits(limits))
    }

    #[getter]
    fn max_pending_connections(&self) -> usize {
        self.0.max_pending_connections
    }

    #[getter]
    fn max_pending_connections_per_ip(&self) -> usize {
        self.0.max_pending_connections_per_ip
    }

    #[getter]
    fn retry_above_handshakes(&self) -> usize {
        self.0.retry_above_handshakes
    }

    #[getter]
    fn refusals_per_ip_per_minute(&self) -> u32 {
        self.0.refusals_per_ip_per_minute
    }

    #[getter]
    fn max_concurrent_dials(&self) -> usize {
        self.0.max_concurrent_dials
    }

    #[getter]
    fn new_address_dials_per_second(&self) -> u32 {
        self.0.new_address_dials_per_second
    }

    #[getter]
    fn max_dial_backoff(&self) -> Duration {
        self.0.max_dial_backoff
    }

    #[getter]
    fn max_peers(&self) -> usize {
        self.0.max_peers
    }

    #[getter]
    fn max_new_peers_per_exchange(&self) -> usize {
        self.0.max_new_peers_per_exchange
    }

    fn __repr__(&self) -> String {
        format!("{:?}", self.0).replacen("Limits", "mosaik.Limits", 1)
    }
}
