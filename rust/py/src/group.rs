//! The native side of `mosaik.Group`: a group id on a network, resolved on
//! every call so that a handle never keeps a closed network's socket alive.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mosaik_core::GroupId;
use mosaik_net::groups::{Group, GroupSpec};
use mosaik_net::Network;
use pyo3::prelude::*;

use crate::bridge::{spawn, Pending};
use crate::consensus::PyConsensusConfig;
use crate::errors::{mosaik_error, net_error};
use crate::ids::{PyDigest, PyPeerId};

#[pyclass(name = "NativeGroup", module = "mosaik._native", frozen)]
pub struct PyGroup {
    net: Arc<Network>,
    id: GroupId,
}

impl PyGroup {
    fn group(&self) -> PyResult<Arc<Group>> {
        self.net
            .groups()
            .ok()
            .and_then(|g| g.get(&self.id))
            .ok_or_else(|| {
                Python::attach(|py| {
                    mosaik_error(
                        py,
                        "GroupTerminated",
                        (format!("group {} was left or its network closed", self.id),),
                    )
                })
            })
    }
}

#[pymethods]
impl PyGroup {
    #[getter]
    fn id(&self) -> PyDigest {
        PyDigest(self.id)
    }

    /// Peers bonded with this node in this group.
    fn bonds(&self) -> PyResult<Vec<PyPeerId>> {
        Ok(self
            .group()?
            .bond_peers()
            .into_iter()
            .map(PyPeerId)
            .collect())
    }

    /// Each known member and the peers it reported bonds with.
    fn mesh(&self) -> PyResult<Vec<(PyPeerId, Vec<PyPeerId>)>> {
        Ok(self
            .group()?
            .mesh()
            .into_iter()
            .map(|(p, bonds)| (PyPeerId(p), bonds.into_iter().map(PyPeerId).collect()))
            .collect())
    }

    fn metrics(&self) -> PyResult<HashMap<String, f64>> {
        Ok(self.group()?.metrics().into_iter().collect())
    }

    #[getter]
    fn active(&self) -> bool {
        self.group().is_ok()
    }

    /// Departs from every bond and stops the group.
    fn leave(&self) -> PyResult<Pending> {
        let net = self.net.clone();
        let id = self.id;
        Ok(spawn(async move {
            if let Ok(groups) = net.groups() {
                groups.leave(&id).await;
            }
            Ok(())
        }))
    }
}

impl PyGroup {
    /// Joins (or finds) the group `group_id` keyed by `secret` on `net`.
    pub fn join(
        net: &Arc<Network>,
        group_id: PyDigest,
        secret: PyDigest,
        consensus: PyConsensusConfig,
        handshake_timeout: Duration,
    ) -> PyResult<Self> {
        let spec = GroupSpec {
            group_id: group_id.0,
            secret: secret.0,
            consensus: consensus.0,
            handshake_timeout,
        };
        let group = net.join(spec).map_err(net_error)?;
        Ok(PyGroup {
            net: net.clone(),
            id: group.id(),
        })
    }
}
