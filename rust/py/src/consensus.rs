//! Python classes for the settings hashed into a `GroupId`
//! (`ConsensusConfig`, `LogReplaySync`) and for the one that is not,
//! `LeadershipPreference`.
//!
//! `ConsensusConfig`'s constructor keywords, getters and `repr` are
//! generated from the parameter table in mosaik-core
//! (`for_each_consensus_param!`), so a new parameter is added there only.

use std::time::Duration;

use mosaik_core::{ConsensusConfig, LeadershipPreference, LogReplaySync};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::config_error;
use crate::ids::PyDigest;
use crate::values::{duration, whole_u32};

/// How a value of a table type is read from Python and shown by `repr`.
trait Param: Sized {
    fn from_py(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Self>;
    fn py_repr(&self) -> String;
}

impl Param for Duration {
    fn from_py(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Self> {
        duration(name, value)
    }

    /// Seconds, as the constructor takes them.
    fn py_repr(&self) -> String {
        self.as_secs_f64().to_string()
    }
}

impl Param for u32 {
    fn from_py(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Self> {
        whole_u32(name, value)
    }

    fn py_repr(&self) -> String {
        self.to_string()
    }
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

/// Expands the core's parameter table into the class's methods (one
/// `#[pymethods]` block holds them all, the fixed ones included).
macro_rules! py_consensus_config {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident : $ty:ty = $default:expr => $rule:ident $(($($arg:tt)*))?;
    )*) => {
        #[pymethods]
        impl PyConsensusConfig {
            /// The defaults, with any parameter overridden by keyword
            /// (durations as float seconds or a `timedelta`).
            #[new]
            #[pyo3(signature = (*, $($name = None,)* **unknown))]
            #[allow(clippy::too_many_arguments)]
            fn new(
                $($name: Option<&Bound<'_, PyAny>>,)*
                unknown: Option<&Bound<'_, PyDict>>,
            ) -> PyResult<Self> {
                if let Some((key, _)) = unknown.and_then(|extra| extra.iter().next()) {
                    let key: String = key.extract()?;
                    return Err(config_error(format!("unknown consensus parameter {key:?}")));
                }
                let mut config = ConsensusConfig::default();
                $(
                    if let Some(value) = $name {
                        config.$name = Param::from_py(stringify!($name), value)?;
                    }
                )*
                config.validate().map_err(|e| config_error(e.to_string()))?;
                Ok(PyConsensusConfig(config))
            }

            $(
                $(#[doc = $doc])*
                #[getter]
                fn $name(&self) -> $ty {
                    self.0.$name
                }
            )*

            fn __repr__(&self) -> String {
                let fields = [
                    $( format!("{}={}", stringify!($name), self.0.$name.py_repr()), )*
                ];
                format!("ConsensusConfig({})", fields.join(", "))
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
                PyConsensusConfig(self.0.deprioritize_leadership_by(DEFAULT_RELUCTANCE))
            }

            /// A copy whose election timeout and bootstrap delay are `factor` times longer.
            fn deprioritize_leadership_by(
                &self,
                #[pyo3(from_py_with = reluctant)] factor: LeadershipPreference,
            ) -> Self {
                PyConsensusConfig(self.0.deprioritize_leadership_by(factor.factor()))
            }

            /// What one batch of commands may hold in all, in bytes, each
            /// command counted as its encoding, its request id and
            /// `COMMAND_OVERHEAD`: what one message between members carries.
            #[getter]
            fn max_batch_bytes(&self) -> usize {
                self.0.entry_budget()
            }

            /// The multiplier on this node's election timeout and bootstrap delay.
            #[getter]
            fn leadership_factor(&self) -> u32 {
                self.0.leadership.factor()
            }
        }
    };
}

mosaik_core::for_each_consensus_param!(py_consensus_config);

/// The factor of `deprioritize_leadership()` and of `reluctant()` without one
/// (the `3` in `reluctant`'s text signature says the same).
const DEFAULT_RELUCTANCE: u32 = 3;

/// A Python reluctance factor as the core's preference (one rule for both
/// `LeadershipPreference.reluctant` and `deprioritize_leadership_by`).
fn reluctant(factor: &Bound<'_, PyAny>) -> PyResult<LeadershipPreference> {
    LeadershipPreference::reluctant(whole_u32("factor", factor)?)
        .map_err(|e| config_error(e.to_string()))
}

/// How eagerly a node stands for leader; per node, not part of the
/// `GroupId`. `NORMAL` stands as usual; `OBSERVER` never stands, abstains
/// from every vote and never counts toward a quorum but replicates and
/// applies; `reluctant(f)` multiplies election timeout and bootstrap delay
/// by `f`.
#[pyclass(
    name = "LeadershipPreference",
    module = "mosaik",
    frozen,
    eq,
    hash,
    skip_from_py_object
)]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PyLeadershipPreference(pub LeadershipPreference);

#[pymethods]
impl PyLeadershipPreference {
    #[classattr]
    #[pyo3(name = "NORMAL")]
    fn normal() -> Self {
        PyLeadershipPreference(LeadershipPreference::Normal)
    }

    #[classattr]
    #[pyo3(name = "OBSERVER")]
    fn observer() -> Self {
        PyLeadershipPreference(LeadershipPreference::Observer)
    }

    /// Stands, but waits `factor` times longer than its peers to do so.
    #[staticmethod]
    #[pyo3(
        signature = (factor = LeadershipPreference::Reluctant(DEFAULT_RELUCTANCE)),
        text_signature = "(factor=3)"
    )]
    fn reluctant(
        #[pyo3(from_py_with = reluctant)] factor: LeadershipPreference,
    ) -> PyLeadershipPreference {
        PyLeadershipPreference(factor)
    }

    /// `"normal"`, `"observer"` or `"reluctant"`.
    #[getter]
    fn kind(&self) -> &'static str {
        match self.0 {
            LeadershipPreference::Normal => "normal",
            LeadershipPreference::Observer => "observer",
            LeadershipPreference::Reluctant(_) => "reluctant",
        }
    }

    /// The multiplier on election timeout and bootstrap delay (1 unless reluctant).
    #[getter]
    fn factor(&self) -> u32 {
        self.0.factor()
    }

    fn __repr__(&self) -> String {
        match self.0 {
            LeadershipPreference::Reluctant(factor) => {
                format!("LeadershipPreference.reluctant({factor})")
            }
            _ => format!("LeadershipPreference.{}", self.kind().to_uppercase()),
        }
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
            s.batch_size = u64::from(whole_u32("batch_size", b)?);
        }
        if let Some(t) = fetch_timeout {
            s.fetch_timeout = duration("fetch_timeout", t)?;
        }
        s.validate().map_err(|e| config_error(e.to_string()))?;
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
