//! Python classes for the settings hashed into a `GroupId`:
//! `ConsensusConfig` and `LogReplaySync`.

use std::time::Duration;

use mosaik_core::{ConsensusConfig, LogReplaySync};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDelta};

use crate::errors::config_error;
use crate::ids::PyDigest;

/// A duration given as float seconds or a `datetime.timedelta`.
pub fn duration_arg(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let secs: f64 = if value.is_instance_of::<PyDelta>() {
        value.call_method0("total_seconds")?.extract()?
    } else if value.is_instance_of::<PyBool>() {
        return Err(config_error(format!(
            "invalid {name} {value}: expected seconds or a timedelta"
        )));
    } else {
        value.extract().map_err(|_| {
            config_error(format!(
                "invalid {name} {}: expected seconds or a timedelta",
                value.repr().map(|r| r.to_string()).unwrap_or_default()
            ))
        })?
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(config_error(format!(
            "invalid {name} {secs}: must be a non-negative, finite duration"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn count_arg(name: &str, value: &Bound<'_, PyAny>) -> PyResult<u32> {
    if value.is_instance_of::<PyBool>() {
        return Err(config_error(format!(
            "invalid {name} {value}: expected an integer"
        )));
    }
    let n: i64 = value
        .extract()
        .map_err(|_| config_error(format!("invalid {name}: expected an integer")))?;
    u32::try_from(n).map_err(|_| config_error(format!("invalid {name} {n}: out of range")))
}

/// Raft timing and quorum parameters every member of a group shares.
#[pyclass(
    name = "ConsensusConfig",
    module = "mosaik",
    frozen,
    eq,
    from_py_object
)]
#[derive(Clone, PartialEq)]
pub struct PyConsensusConfig(pub ConsensusConfig);

#[pymethods]
impl PyConsensusConfig {
    #[new]
    #[pyo3(signature = (**overrides))]
    fn new(overrides: Option<&Bound<'_, pyo3::types::PyDict>>) -> PyResult<Self> {
        let mut c = ConsensusConfig::default();
        for (key, value) in overrides.into_iter().flatten() {
            let key: String = key.extract()?;
            match key.as_str() {
                "heartbeat_interval" => c.heartbeat_interval = duration_arg(&key, &value)?,
                "heartbeat_jitter" => c.heartbeat_jitter = duration_arg(&key, &value)?,
                "max_missed_heartbeats" => c.max_missed_heartbeats = count_arg(&key, &value)?,
                "election_timeout" => c.election_timeout = duration_arg(&key, &value)?,
                "election_timeout_jitter" => {
                    c.election_timeout_jitter = duration_arg(&key, &value)?
                }
                "bootstrap_delay" => c.bootstrap_delay = duration_arg(&key, &value)?,
                "forward_timeout" => c.forward_timeout = duration_arg(&key, &value)?,
                "query_timeout" => c.query_timeout = duration_arg(&key, &value)?,
                "min_quorum" => c.min_quorum = count_arg(&key, &value)?,
                other => {
                    return Err(config_error(format!(
                        "unknown consensus parameter {other:?}"
                    )))
                }
            }
        }
        c.validate().map_err(|e| config_error(e.to_string()))?;
        Ok(PyConsensusConfig(c))
    }

    /// A builder with a `with_<parameter>(value)` method per parameter.
    #[staticmethod]
    fn builder(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
        py.import("mosaik.consensus")?
            .getattr("ConsensusConfigBuilder")?
            .call0()
    }

    /// blake3 of every shared parameter (not the leadership factor).
    fn digest(&self) -> PyDigest {
        PyDigest(self.0.digest())
    }

    /// A copy whose election timeout and bootstrap delay are 3 times longer.
    fn deprioritize_leadership(&self) -> Self {
        PyConsensusConfig(self.0.deprioritize_leadership_by(3))
    }

    fn deprioritize_leadership_by(&self, factor: &Bound<'_, PyAny>) -> PyResult<Self> {
        let factor = count_arg("factor", factor)?;
        if factor < 1 {
            return Err(config_error("invalid factor 0: must be at least 1"));
        }
        Ok(PyConsensusConfig(self.0.deprioritize_leadership_by(factor)))
    }

    #[getter]
    fn heartbeat_interval(&self) -> Duration {
        self.0.heartbeat_interval
    }
    #[getter]
    fn heartbeat_jitter(&self) -> Duration {
        self.0.heartbeat_jitter
    }
    #[getter]
    fn max_missed_heartbeats(&self) -> u32 {
        self.0.max_missed_heartbeats
    }
    #[getter]
    fn election_timeout(&self) -> Duration {
        self.0.election_timeout
    }
    #[getter]
    fn election_timeout_jitter(&self) -> Duration {
        self.0.election_timeout_jitter
    }
    #[getter]
    fn bootstrap_delay(&self) -> Duration {
        self.0.bootstrap_delay
    }
    #[getter]
    fn forward_timeout(&self) -> Duration {
        self.0.forward_timeout
    }
    #[getter]
    fn query_timeout(&self) -> Duration {
        self.0.query_timeout
    }
    #[getter]
    fn min_quorum(&self) -> u32 {
        self.0.min_quorum
    }
    #[getter]
    fn leadership_factor(&self) -> u32 {
        self.0.leadership_factor
    }

    fn __repr__(&self) -> String {
        let c = &self.0;
        format!(
            "ConsensusConfig(heartbeat_interval={}, heartbeat_jitter={}, max_missed_heartbeats={}, \
             election_timeout={}, election_timeout_jitter={}, bootstrap_delay={}, \
             forward_timeout={}, query_timeout={}, min_quorum={})",
            c.heartbeat_interval.as_secs_f64(),
            c.heartbeat_jitter.as_secs_f64(),
            c.max_missed_heartbeats,
            c.election_timeout.as_secs_f64(),
            c.election_timeout_jitter.as_secs_f64(),
            c.bootstrap_delay.as_secs_f64(),
            c.forward_timeout.as_secs_f64(),
            c.query_timeout.as_secs_f64(),
            c.min_quorum
        )
    }
}

/// Catch-up by replaying the log from peers; its settings are hashed into
/// the `GroupId`.
#[pyclass(name = "LogReplaySync", module = "mosaik", frozen, eq, from_py_object)]
#[derive(Clone, PartialEq)]
pub struct PyLogReplaySync(pub LogReplaySync);

#[pymethods]
impl PyLogReplaySync {
    #[new]
    #[pyo3(signature = (batch_size = None, fetch_timeout = None))]
    fn new(
        batch_size: Option<&Bound<'_, PyAny>>,
        fetch_timeout: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut s = LogReplaySync::default();
        if let Some(b) = batch_size {
            let n = count_arg("batch_size", b)?;
            if n < 1 {
                return Err(config_error("invalid batch_size 0: must be at least 1"));
            }
            s.batch_size = u64::from(n);
        }
        if let Some(t) = fetch_timeout {
            s.fetch_timeout = duration_arg("fetch_timeout", t)?;
            if s.fetch_timeout.is_zero() {
                return Err(config_error("invalid fetch_timeout 0: must be positive"));
            }
        }
        Ok(PyLogReplaySync(s))
    }

    fn signature(&self) -> PyDigest {
        PyDigest(self.0.signature())
    }

    #[getter]
    fn batch_size(&self) -> u64 {
        self.0.batch_size
    }

    #[getter]
    fn fetch_timeout(&self) -> Duration {
        self.0.fetch_timeout
    }

    fn __repr__(&self) -> String {
        format!(
            "LogReplaySync(batch_size={}, fetch_timeout={})",
            self.0.batch_size,
            self.0.fetch_timeout.as_secs_f64()
        )
    }
}
