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
use crate::errors::{config_error, net_error};
use crate::group::{PyGroup, PyGroupJoin};
use crate::ids::{PyDigest, PyPeerId};
use crate::limits::PyLimits;
use crate::values::duration;

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

/// A network's settings, checked as they are given (`ConfigError`): what
/// `mosaik.NetworkBuilder` collects and `start_network` starts.
#[pyclass(name = "NetworkOptions", module = "mosaik._native", frozen)]
pub struct PyNetworkOptions(NetworkConfig);

/// Socket addresses from a list of `ip:port` strings (a lone string is
/// refused: it would read as a list of characters).
fn socket_addrs(addrs: &Bound<'_, PyAny>) -> PyResult<Vec<std::net::SocketAddr>> {
    if addrs.is_instance_of::<PyString>() {
        return Err(config_error(format!(
            "invalid addresses {}: expected a list of \"ip:port\" strings, not one string",
            addrs.repr()?
        )));
    }
    addrs
        .try_iter()?
        .map(|a| {
            let a = a?;
            let text = a.cast::<PyString>().map_err(|_| {
                config_error(format!(
                    "invalid address {}: expected an \"ip:port\" string",
                    a.repr().map(|r| r.to_string()).unwrap_or_default()
                ))
            })?;
            parse_socket_addr(text.to_str()?).map_err(net_error)
        })
        .collect()
}

#[pymethods]
impl PyNetworkOptions {
    /// The defaults for a network named `name`.
    #[new]
    fn new(name: &Bound<'_, PyAny>) -> PyResult<Self> {
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
        let config = NetworkConfig::new(name);
        config.validate().map_err(net_error)?;
        Ok(PyNetworkOptions(config))
    }

    /// A copy with each given setting replaced, then checked as a whole.
    #[pyo3(signature = (*, secret = None, addrs = None, advertise = None, bootstrap = None,
        handshake_timeout = None, gossip_interval = None, entry_ttl = None, limits = None))]
    #[allow(clippy::too_many_arguments)]
    fn replace(
        &self,
        secret: Option<&Bound<'_, PyAny>>,
        addrs: Option<&Bound<'_, PyAny>>,
        advertise: Option<&Bound<'_, PyAny>>,
        bootstrap: Option<&Bound<'_, PyAny>>,
        handshake_timeout: Option<&Bound<'_, PyAny>>,
        gossip_interval: Option<&Bound<'_, PyAny>>,
        entry_ttl: Option<&Bound<'_, PyAny>>,
        limits: Option<PyLimits>,
    ) -> PyResult<Self> {
        let mut config = self.0.clone();
        if let Some(secret) = secret.filter(|s| !s.is_none()) {
            config.secret = Some(secret_seed(secret)?);
        }
        if let Some(addrs) = addrs.map(socket_addrs).transpose()? {
            if !addrs.is_empty() {
                config.addrs = addrs;
            }
        }
        if let Some(advertise) = advertise.map(socket_addrs).transpose()? {
            config.advertise = advertise;
        }
        if let Some(bootstrap) = bootstrap {
            config.discovery.bootstrap = bootstrap
                .try_iter()?
                .map(|item| endpoint_addr(&item?))
                .collect::<PyResult<_>>()?;
        }
        if let Some(t) = handshake_timeout {
            config.handshake_timeout = duration("handshake_timeout", t)?;
        }
        if let Some(t) = gossip_interval {
            config.discovery.gossip_interval = duration("gossip_interval", t)?;
        }
        if let Some(t) = entry_ttl {
            config.discovery.entry_ttl = duration("entry_ttl", t)?;
        }
        if let Some(limits) = limits {
            config.limits = limits.0;
        }
        config.validate().map_err(net_error)?;
        Ok(PyNetworkOptions(config))
    }

    #[getter]
    fn handshake_timeout(&self) -> Duration {
        self.0.handshake_timeout
    }

    #[getter]
    fn gossip_interval(&self) -> Duration {
        self.0.discovery.gossip_interval
    }

    #[getter]
    fn entry_ttl(&self) -> Duration {
        self.0.discovery.entry_ttl
    }

    #[getter]
    fn advertise(&self) -> Vec<String> {
        self.0.advertise.iter().map(|a| a.to_string()).collect()
    }
}

/// Binds and starts a network; resolves to a `NativeNetwork`.
#[pyfunction]
pub fn start_network(options: &PyNetworkOptions) -> Pending {
    let config = options.0.clone();
    spawn(async move {
        let net = Network::start(config).await?;
        Ok(PyNetwork { net })
    })
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

    /// Joins the group `join` describes; its replica receives committed
    /// commands on the apply pool. `ConfigError` if this network
    /// has joined that group id already.
    fn join_group(&self, join: &PyGroupJoin) -> PyResult<PyGroup> {
        PyGroup::join(&self.net, join)
    }

    fn close(&self) -> PyResult<Pending> {
        let net = self.net.clone();
        Ok(spawn(async move {
            net.close().await;
            Ok(())
        }))
    }
}
