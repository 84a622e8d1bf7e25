//! mosaik._native: the only crate that knows Python. It wraps the handles
//! of mosaik-net and mosaik-core as Python classes and hands Rust futures to
//! asyncio. Consensus and transport decisions are made in core and net;
//! this crate holds the Python side of the contract around them: settings
//! converted from Python values, the Python state machine driven on the
//! apply path, read-your-writes (a command's call returns once this node
//! has applied it) and the metric names Python sees.

mod apply;
mod bridge;
mod codec;
mod consensus;
mod cursor;
mod errors;
mod group;
mod ids;
mod keys;
mod limits;
mod logs;
mod network;
mod storage;
mod values;
mod when;

use pyo3::prelude::*;

/// Tasks of any network in this process that are still running.
#[pyfunction]
fn live_tasks() -> usize {
    mosaik_net::tasks::live_tasks()
}

/// Native operations still running (finished or cancelled ones excluded).
#[pyfunction]
fn in_flight() -> usize {
    bridge::in_flight()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<bridge::Bridge>()?;
    m.add_class::<bridge::Pending>()?;
    m.add_class::<cursor::PyCursor>()?;
    m.add_class::<cursor::PyApplyContext>()?;
    m.add_class::<ids::PyDigest>()?;
    m.add_class::<ids::PyPeerId>()?;
    m.add_class::<network::PyEndpointAddr>()?;
    m.add_class::<network::PyNetwork>()?;
    m.add_class::<limits::PyLimits>()?;
    m.add_class::<network::PyNetworkOptions>()?;
    m.add_class::<group::PyGroup>()?;
    m.add_class::<group::PyGroupJoin>()?;
    m.add_class::<group::Proposal>()?;
    m.add_class::<when::Until>()?;
    m.add_class::<when::Change>()?;
    m.add_class::<consensus::PyConsensusConfig>()?;
    m.add_class::<consensus::PyLogReplaySync>()?;
    m.add_class::<consensus::PyLeadershipPreference>()?;
    m.add_function(wrap_pyfunction!(network::start_network, m)?)?;
    m.add_function(wrap_pyfunction!(keys::group_secret, m)?)?;
    m.add_function(wrap_pyfunction!(live_tasks, m)?)?;
    m.add_function(wrap_pyfunction!(in_flight, m)?)?;
    m.add_function(wrap_pyfunction!(apply::stop_appliers, m)?)?;
    m.add_function(wrap_pyfunction!(codec::check_msgpack_depth, m)?)?;
    m.add_function(wrap_pyfunction!(logs::set_log_level, m)?)?;
    m.add("MSGPACK_MAX_DEPTH", codec::MSGPACK_MAX_DEPTH)?;
    m.add("COMMAND_OVERHEAD", mosaik_core::config::ENTRY_OVERHEAD)?;
    m.add("MAX_REQUEST_ID", mosaik_core::MAX_REQUEST_ID)?;
    m.add("GROUPS_ALPN", mosaik_net::endpoint::GROUPS_ALPN)?;
    m.add("DISCOVERY_ALPN", mosaik_net::endpoint::DISCOVERY_ALPN)?;
    Ok(())
}
