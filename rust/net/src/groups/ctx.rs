//! What the parts of the groups layer share: the network-wide context every
//! joined group runs in, and what identifies and configures one group.

use std::sync::Arc;
use std::time::Duration;

use mosaik_core::{ConsensusConfig, Digest, GroupId, NetworkId, PeerId};

use super::hint::Settings;
use crate::discovery::Discovery;
use crate::endpoint::Endpoint;
use crate::tasks::TaskSet;

/// What every group of one network shares.
pub struct GroupsCtx {
    pub local: PeerId,
    pub network_id: NetworkId,
    pub endpoint: Arc<Endpoint>,
    pub discovery: Arc<Discovery>,
    pub tasks: Arc<TaskSet>,
    pub max_frame: usize,
}

/// What identifies and configures a group on this node.
#[derive(Clone, Debug)]
pub struct GroupSpec {
    pub group_id: GroupId,
    /// The group key's secret.
    pub secret: Digest,
    pub consensus: ConsensusConfig,
    pub handshake_timeout: Duration,
    /// What the group is made of, for the hint peers read (`hint`).
    pub settings: Settings,
}
