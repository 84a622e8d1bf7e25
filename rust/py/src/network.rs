//! Python handles for a `Network` and its `EndpointAddr`, and the function
//! that starts one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mosaik_core::ids::decode_hex32;
use mosaik_net::addr::parse_socket_addr;
use mosaik_net::{EndpointAddr, Network, NetworkConfig};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use crate::bridge::{spawn, Pending};
use crate::consensus::{PyConsensusConfig, PyLogReplaySync};
use crate::errors::{config_error, net_error};
use crate::group::{JoinArgs, PyGroup};
use crate::ids::{PyDigest, PyPeerId};
use crate::limits::PyLimits;

/// A peer id and the socket addresses it listens on.
#[pyclass(name = "EndpointAddr", module = "mosaik", frozen, eq, from_py_object)]
#[derive(Clone, PartialEq)]
pub struct PyEndpointAddr(pub EndpointAddr);

#[pymethods]
impl PyEndpointAddr {
    /// Reads `<peer-hex>@ip:port[,ip:port...]`.
    #[staticmethod]
    fn parse(text: &str) -> PyResult<Self> {
        EndpointAddr::parse(text)
            .map(PyEndpointAddr)
            .map_err(net_error)
    }

    #[getter]
    fn peer_id(&self) -> PyPeerId {
        PyPeerId(self.0.peer_id)
    }

    #[getter]
    fn addrs(&self) -> Vec<String> {
        self.0.addrs.iter().map(|a| a.to_string()).collect()
    }

    fn __str__(&self) -> String {
        self.0.to_string()
    }

    fn __repr__(&self) -> String {
        format!("EndpointAddr('{}')", self.0)
    }
}

/// An `EndpointAddr` or its string form.
pub fn endpoint_addr(obj: &Bound<'_, PyAny>) -> PyResult<EndpointAddr> {
    if let Ok(addr) = obj.cast::<PyEndpointAddr>() {
        return Ok(addr.get().0.clone());
    }
    if let Ok(text) = obj.cast::<PyString>() {
        return EndpointAddr::parse(text.to_str()?).map_err(net_error);
    }
    Err(config_error(format!(
        "invalid endpoint address {}: expected an EndpointAddr or a string",
        obj.repr()?
    )))
}

/// An ed25519 seed: 32 bytes or 64 hex characters.
fn secret_seed(obj: &Bound<'_, PyAny>) -> PyResult<[u8; 32]> {
    if let Ok(bytes) = obj.cast::<PyBytes>() {
        let raw = bytes.as_bytes();
        return <[u8; 32]>::try_from(raw).map_err(|_| {
            config_error(format!(
                "invalid secret key: {} bytes, expected 32 bytes or 64 hex characters",
                raw.len()
            ))
        });
    }
    if let Ok(text) = obj.cast::<PyString>() {
        let text = text.to_str()?;
        return decode_hex32(text).ok_or_else(|| {
            config_error(format!(
                "invalid secret key: a string of {} characters that is not 64 hex characters",
                text.chars().count()
            ))
        });
    }
    Err(config_error(format!(
        "invalid secret key of type {}: expected 32 bytes or 64 hex characters",
        obj.get_type().name()?
    )))
}

fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            config_error(format!(
                "invalid {name} {value}: must be a positive duration"
            ))
        })
}

/// Timing knobs of a network, in seconds.
#[derive(FromPyObject)]
#[pyo3(from_item_all)]
pub struct Timings {
    handshake_timeout: f64,
    gossip_interval: f64,
    entry_ttl: f64,
}

fn network_config(
    name: &Bound<'_, PyAny>,
    secret: Option<&Bound<'_, PyAny>>,
    addrs: Vec<String>,
    bootstrap: &Bound<'_, PyAny>,
    timings: Timings,
    limits: PyLimits,
) -> PyResult<NetworkConfig> {
    let name = name
        .cast::<PyString>()
        .map_err(|_| {
            config_error(format!(
                "invalid network name {}: it must be a non-empty string",
                name.repr().map(|r| r.to_string()).unwrap_or_default()
            ))
        })?
        .to_str()?
        .to_owned();
    let mut config = NetworkConfig::new(name);
    config.secret = secret.map(secret_seed).transpose()?;
    if !addrs.is_empty() {
        config.addrs = addrs
            .iter()
            .map(|a| parse_socket_addr(a))
            .collect::<Result<_, _>>()
            .map_err(net_error)?;
    }
    config.discovery.bootstrap = bootstrap
        .try_iter()?
        .map(|item| endpoint_addr(&item?))
        .collect::<PyResult<_>>()?;
    config.handshake_timeout = seconds("handshake_timeout", timings.handshake_timeout)?;
    config.discovery.gossip_interval = seconds("gossip_interval", timings.gossip_interval)?;
    config.discovery.entry_ttl = seconds("entry_ttl", timings.entry_ttl)?;
    config.limits = limits.0;
    config.validate().map_err(net_error)?;
    Ok(config)
}

/// Binds and starts a network; resolves to a `NativeNetwork`.
#[pyfunction]
#[pyo3(signature = (name, secret, addrs, bootstrap, timings, limits))]
pub fn start_network<'py>(
    name: &Bound<'py, PyAny>,
    secret: Option<&Bound<'py, PyAny>>,
    addrs: Vec<String>,
    bootstrap: &Bound<'py, PyAny>,
    timings: Timings,
    limits: PyLimits,
) -> PyResult<Pending> {
    let config = network_config(name, secret, addrs, bootstrap, timings, limits)?;
    Ok(spawn(async move {
        let net = Network::start(config).await?;
        Ok(PyNetwork { net })
    }))
}

/// The native side of `mosaik.Network`.
#[pyclass(name = "NativeNetwork", module = "mosaik._native", frozen)]
pub struct PyNetwork {
    pub net: Arc<Network>,
}

#[pymethods]
impl PyNetwork {
    #[getter]
    fn local_id(&self) -> PyPeerId {
        PyPeerId(self.net.peer_id())
    }

    #[getter]
    fn local_addr(&self) -> PyEndpointAddr {
        PyEndpointAddr(self.net.local_addr().clone())
    }

    #[getter]
    fn network_id(&self) -> PyDigest {
        PyDigest(self.net.network_id())
    }

    #[getter]
    fn closed(&self) -> bool {
        self.net.is_closed()
    }

    /// Peers in the catalog, as `EndpointAddr`s. Waits for the catalog's
    /// lock without the GIL.
    fn known_peers(&self, py: Python<'_>) -> PyResult<Vec<PyEndpointAddr>> {
        let discovery = self.net.discovery().map_err(net_error)?;
        let entries = py.detach(|| discovery.entries());
        Ok(entries
            .into_iter()
            .map(|e| {
                PyEndpointAddr(EndpointAddr {
                    peer_id: e.peer_id,
                    addrs: e.addrs,
                })
            })
            .collect())
    }

    fn sync_with(&self, addr: &Bound<'_, PyAny>) -> PyResult<Pending> {
        let addr = endpoint_addr(addr)?;
        let net = self.net.clone();
        Ok(spawn(async move { Ok(net.sync_with(&addr).await?) }))
    }

    /// Waits for the locks behind the metrics without the GIL.
    fn metrics(&self, py: Python<'_>) -> HashMap<String, f64> {
        py.detach(|| self.net.metrics()).into_iter().collect()
    }

    /// Joins (or finds) the group `group_id` keyed by `secret`; `replica`
    /// receives committed commands on the group's apply thread.
    #[allow(clippy::too_many_arguments)]
    fn join_group(
        &self,
        group_id: PyDigest,
        secret: PyDigest,
        consensus: PyConsensusConfig,
        handshake_timeout: Duration,
        replica: Py<PyAny>,
        preference: (String, u32),
        sync: PyLogReplaySync,
        disk: Option<(std::path::PathBuf, u64)>,
        snapshot_every: u64,
    ) -> PyResult<PyGroup> {
        PyGroup::join(
            &self.net,
            JoinArgs {
                group_id,
                secret,
                consensus,
                handshake_timeout,
                replica,
                preference,
                sync,
                disk,
                snapshot_every,
            },
        )
    }

    fn close(&self) -> PyResult<Pending> {
        let net = self.net.clone();
        Ok(spawn(async move {
            net.close().await;
            Ok(())
        }))
    }
}
