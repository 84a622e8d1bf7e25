//! The one conversion of a Python duration setting: float (or int) seconds
//! or a `datetime.timedelta`, non-negative and finite. Whether zero is
//! allowed is the setting's own bound, checked where the setting is
//! defined (`ConsensusConfig::validate`, `LogReplaySync::validate`,
//! `Limits::validate`), so each rule lives in one place.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDelta};

use crate::errors::config_error;

/// `value` as a `Duration`, or a `ConfigError` that reads
/// `invalid <name> <repr(value)>: <why>`.
pub fn duration(name: &str, value: &Bound<'_, PyAny>) -> PyResult<Duration> {
    let invalid = |why: &str| {
        let shown = value.repr().map(|r| r.to_string()).unwrap_or_default();
        config_error(format!("invalid {name} {shown}: {why}"))
    };
    let secs: f64 = if value.is_instance_of::<PyDelta>() {
        value.call_method0("total_seconds")?.extract()?
    } else if value.is_instance_of::<PyBool>() {
        return Err(invalid("expected seconds or a timedelta"));
    } else {
        value
            .extract()
            .map_err(|_| invalid("expected seconds or a timedelta"))?
    };
    Duration::try_from_secs_f64(secs)
        .map_err(|_| invalid("must be a non-negative, finite duration"))
}
