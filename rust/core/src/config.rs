//! Consensus parameters: their defaults, validation, the digest that goes
//! into the `GroupId`, and the per-node leadership preference.
//!
//! Digest encoding (version 1): blake3 over the UTF-8 tag
//! `"mosaik.consensus.v1"` followed by, in this order, each value as a
//! little-endian u64: heartbeat_interval, heartbeat_jitter (nanoseconds),
//! max_missed_heartbeats, election_timeout, election_timeout_jitter,
//! bootstrap_delay, forward_timeout, query_timeout (nanoseconds),
//! min_quorum. The leadership factor is per node and is not hashed.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::ids::Digest;

const DIGEST_TAG: &[u8] = b"mosaik.consensus.v1";

/// The parameters every member of a group must share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsensusConfig {
    pub heartbeat_interval: Duration,
    pub heartbeat_jitter: Duration,
    pub max_missed_heartbeats: u32,
    pub election_timeout: Duration,
    pub election_timeout_jitter: Duration,
    pub bootstrap_delay: Duration,
    pub forward_timeout: Duration,
    pub query_timeout: Duration,
    /// Least number of agreeing voters (self included) for an election or a commit.
    pub min_quorum: u32,
    /// Multiplies election timeout and bootstrap delay on this node; not hashed.
    pub leadership_factor: u32,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        ConsensusConfig {
            heartbeat_interval: Duration::from_millis(500),
            heartbeat_jitter: Duration::from_millis(150),
            max_missed_heartbeats: 10,
            election_timeout: Duration::from_secs(2),
            election_timeout_jitter: Duration::from_millis(500),
            bootstrap_delay: Duration::from_secs(3),
            forward_timeout: Duration::from_secs(2),
            query_timeout: Duration::from_secs(2),
            min_quorum: 1,
            leadership_factor: 1,
        }
    }
}

impl ConsensusConfig {
    /// Checks every parameter; the error names the first one out of range.
    pub fn validate(&self) -> Result<()> {
        let durations = [
            ("heartbeat_interval", self.heartbeat_interval),
            ("election_timeout", self.election_timeout),
            ("bootstrap_delay", self.bootstrap_delay),
            ("forward_timeout", self.forward_timeout),
            ("query_timeout", self.query_timeout),
        ];
        for (name, value) in durations {
            if value.is_zero() {
                return Err(invalid(name, "must be greater than zero"));
            }
        }
        if self.heartbeat_jitter >= self.heartbeat_interval {
            return Err(invalid(
                "heartbeat_jitter",
                "must be below heartbeat_interval",
            ));
        }
        if self.election_timeout_jitter >= self.election_timeout {
            return Err(invalid(
                "election_timeout_jitter",
                "must be below election_timeout",
            ));
        }
        if self.max_missed_heartbeats < 1 {
            return Err(invalid("max_missed_heartbeats", "must be at least 1"));
        }
        if self.min_quorum < 1 {
            return Err(invalid("min_quorum", "must be at least 1"));
        }
        if self.leadership_factor < 1 {
            return Err(invalid("leadership_factor", "must be at least 1"));
        }
        Ok(())
    }

    /// Digest of every shared parameter, in the encoding the module documents.
    pub fn digest(&self) -> Digest {
        let mut hasher = blake3::Hasher::new();
        hasher.update(DIGEST_TAG);
        for value in self.encoded_values() {
            hasher.update(&value.to_le_bytes());
        }
        Digest(*hasher.finalize().as_bytes())
    }

    /// A copy whose election timeout and bootstrap delay are `factor` times longer.
    pub fn deprioritize_leadership_by(&self, factor: u32) -> Self {
        ConsensusConfig {
            leadership_factor: factor,
            ..self.clone()
        }
    }

    fn encoded_values(&self) -> [u64; 9] {
        [
            nanos(self.heartbeat_interval),
            nanos(self.heartbeat_jitter),
            u64::from(self.max_missed_heartbeats),
            nanos(self.election_timeout),
            nanos(self.election_timeout_jitter),
            nanos(self.bootstrap_delay),
            nanos(self.forward_timeout),
            nanos(self.query_timeout),
            u64::from(self.min_quorum),
        ]
    }
}

/// How eagerly this node stands for election; per node, not hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LeadershipPreference {
    #[default]
    Normal,
    /// Replicates and applies, never stands, always abstains, never counts toward a quorum.
    Observer,
    /// Election timeout and bootstrap delay are multiplied by the factor.
    Reluctant(u32),
}

impl LeadershipPreference {
    pub fn is_observer(self) -> bool {
        self == LeadershipPreference::Observer
    }

    /// The multiplier this preference puts on election timeout and bootstrap delay.
    pub fn factor(self) -> u32 {
        match self {
            LeadershipPreference::Reluctant(factor) => factor.max(1),
            _ => 1,
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn invalid(name: &str, why: &str) -> Error {
    Error::Config(format!("{name} {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(ConsensusConfig::default().validate(), Ok(()));
    }

    #[test]
    fn errors_name_the_parameter() {
        let cases: Vec<(&str, ConsensusConfig)> = vec![
            (
                "heartbeat_interval",
                ConsensusConfig {
                    heartbeat_interval: Duration::ZERO,
                    ..Default::default()
                },
            ),
            (
                "heartbeat_jitter",
                ConsensusConfig {
                    heartbeat_jitter: Duration::from_millis(500),
                    ..Default::default()
                },
            ),
            (
                "election_timeout_jitter",
                ConsensusConfig {
                    election_timeout_jitter: Duration::from_secs(3),
                    ..Default::default()
                },
            ),
            (
                "max_missed_heartbeats",
                ConsensusConfig {
                    max_missed_heartbeats: 0,
                    ..Default::default()
                },
            ),
            (
                "min_quorum",
                ConsensusConfig {
                    min_quorum: 0,
                    ..Default::default()
                },
            ),
            (
                "query_timeout",
                ConsensusConfig {
                    query_timeout: Duration::ZERO,
                    ..Default::default()
                },
            ),
        ];
        for (name, config) in cases {
            let message = config.validate().unwrap_err().to_string();
            assert!(message.contains(name), "{message} should name {name}");
        }
    }

    #[test]
    fn digest_covers_every_parameter() {
        let base = ConsensusConfig::default();
        let variants = [
            ConsensusConfig {
                heartbeat_interval: Duration::from_millis(501),
                ..base.clone()
            },
            ConsensusConfig {
                heartbeat_jitter: Duration::from_millis(151),
                ..base.clone()
            },
            ConsensusConfig {
                max_missed_heartbeats: 11,
                ..base.clone()
            },
            ConsensusConfig {
                election_timeout: Duration::from_millis(2001),
                ..base.clone()
            },
            ConsensusConfig {
                election_timeout_jitter: Duration::from_millis(501),
                ..base.clone()
            },
            ConsensusConfig {
                bootstrap_delay: Duration::from_millis(3001),
                ..base.clone()
            },
            ConsensusConfig {
                forward_timeout: Duration::from_millis(2001),
                ..base.clone()
            },
            ConsensusConfig {
                query_timeout: Duration::from_millis(2001),
                ..base.clone()
            },
            ConsensusConfig {
                min_quorum: 2,
                ..base.clone()
            },
        ];
        for variant in variants {
            assert_ne!(variant.digest(), base.digest(), "{variant:?}");
        }
    }

    #[test]
    fn leadership_factor_is_not_hashed() {
        let base = ConsensusConfig::default();
        assert_eq!(base.deprioritize_leadership_by(3).digest(), base.digest());
    }
}
