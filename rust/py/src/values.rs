//! The one conversion of each kind of Python setting value: a duration
//! (float or int seconds, or a `datetime.timedelta`, non-negative and
//! finite) and a whole number (an int, not a bool, that fits in 64 bits). Whether zero is
//! allowed is the setting's own bound, checked where the setting is
//! defined (`ConsensusConfig::validate`, `LogReplaySync::validate`,
//! `Limits::validate`), so each rule lives in one place.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDelta, PyInt};

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

/// `value` as a non-negative whole number, or a `ConfigError` that reads
/// `invalid <name> <repr(value)>: <why>`.
pub fn whole(name: &str, value: &Bound<'_, PyAny>) -> PyResult<u64> {
    let invalid = |why: &str| {
        let shown = value.repr().map(|r| r.to_string()).unwrap_or_default();
        config_error(format!("invalid {name} {shown}: {why}"))
    };
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(invalid("expected an int"));
    }
    if let Ok(n) = value.extract::<u64>() {
        return Ok(n);
    }
    if value.lt(0)? {
        return Err(invalid("must not be negative"));
    }
    Err(invalid("does not fit in 64 bits"))
}

/// `value` as a whole number of at most `u32::MAX`.
pub fn whole_u32(name: &str, value: &Bound<'_, PyAny>) -> PyResult<u32> {
    let n = whole(name, value)?;
    u32::try_from(n).map_err(|_| config_error(format!("invalid {name} {n}: above {}", u32::MAX)))
}
