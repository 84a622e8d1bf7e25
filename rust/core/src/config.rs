//! Consensus parameters: their defaults, validation, the digest that goes
//! into the `GroupId`, and the per-node leadership preference.
//!
//! Every shared parameter is listed once, in [`for_each_consensus_param!`]:
//! the struct, its `Default`, `validate` and `digest` here and the Python
//! class in rust/py are all generated from that table.
//!
//! Digest encoding (version 1): blake3 over the UTF-8 tag
//! `"mosaik.consensus.v1"` followed by each parameter of the table, in
//! table order, as a little-endian u64 (durations in nanoseconds,
//! saturating). The node's own `leadership` preference is not hashed. The
//! table's order is therefore part of the wire contract: new parameters go
//! at its end, and `rust/core/tests/config_digest.rs` pins the result.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::ids::Digest;

const DIGEST_TAG: &[u8] = b"mosaik.consensus.v1";

/// Least `max_message_bytes`, whatever `max_command_bytes` says.
pub const MIN_MESSAGE_BYTES: usize = 4 << 20;
/// Room in a message for everything but its entries' payloads.
const MESSAGE_HEADROOM: usize = 64 << 10;
/// What an entry costs in a message beyond `Entry::size`: its term, index,
/// kind, lengths and batch place, generously.
pub const ENTRY_OVERHEAD: usize = 48;

/// The table of consensus parameters. Each row is
/// `doc; name: type = default => rule;` where `rule` is `positive` (a
/// duration above zero), `below(other)` or `above(other)` (less or more
/// than an earlier row), `at_least(n)` or `between(lo, hi)` (inclusive). Every row is shared by the group and enters the digest,
/// in this order; a per-node setting does not belong here (see
/// [`LeadershipPreference`]).
///
/// `for_each_consensus_param!(callback)` expands to `callback! { rows }`,
/// so each consumer defines the macro that turns rows into its own items.
#[macro_export]
macro_rules! for_each_consensus_param {
    ($callback:ident) => {
        $callback! {
            /// Interval between two heartbeats of the leader.
            heartbeat_interval: ::std::time::Duration =
                ::std::time::Duration::from_millis(500) => positive;
            /// Random extra delay of each heartbeat, below `heartbeat_interval`.
            heartbeat_jitter: ::std::time::Duration =
                ::std::time::Duration::from_millis(150) => below(heartbeat_interval);
            /// Heartbeats a follower may miss before it suspects the leader.
            max_missed_heartbeats: u32 = 10 => at_least(1);
            /// How long a follower waits without a leader before it stands;
            /// above `heartbeat_interval`, or no leader could keep its followers.
            election_timeout: ::std::time::Duration =
                ::std::time::Duration::from_secs(2) => above(heartbeat_interval);
            /// Random extra wait of each election timeout, below `election_timeout`.
            election_timeout_jitter: ::std::time::Duration =
                ::std::time::Duration::from_millis(500) => below(election_timeout);
            /// Extra wait before the first election of a fresh group.
            bootstrap_delay: ::std::time::Duration =
                ::std::time::Duration::from_secs(3) => positive;
            /// How long a follower waits for the leader to answer a forwarded command.
            forward_timeout: ::std::time::Duration =
                ::std::time::Duration::from_secs(2) => positive;
            /// How long a strong query waits for the leader's answer.
            query_timeout: ::std::time::Duration =
                ::std::time::Duration::from_secs(2) => positive;
            /// Least number of agreeing voters (self included) for an election or a commit.
            min_quorum: u32 = 1 => at_least(1);
            /// Largest encoded command, in bytes; a larger one is refused at
            /// the call. Messages between members may grow to hold one.
            max_command_bytes: u32 = 16 << 20 => between(1, 1 << 30);
            /// How many log entries back a request id is remembered: a
            /// command whose id was applied within them is not applied again.
            dedupe_window: u32 = 100_000 => at_least(1);
        }
    };
}

/// Expands the table into `ConsensusConfig`, its `Default`, and the
/// per-parameter checks and digest input.
macro_rules! define_consensus_config {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident : $ty:ty = $default:expr => $rule:ident $(($($arg:tt)*))?;
    )*) => {
        /// The parameters every member of a group must share, and this
        /// node's leadership preference (not shared, not hashed).
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct ConsensusConfig {
            $( $(#[doc = $doc])* pub $name: $ty, )*
            /// This node's own preference, set by `deprioritize_leadership_by`;
            /// combined with the state machine's `NodeConfig::preference`.
            pub leadership: LeadershipPreference,
        }

        impl Default for ConsensusConfig {
            fn default() -> Self {
                ConsensusConfig {
                    $( $name: $default, )*
                    leadership: LeadershipPreference::Normal,
                }
            }
        }

        impl ConsensusConfig {
            /// The first table parameter out of its bounds, as an error naming it.
            fn check_params(&self) -> Result<()> {
                $( check_rule!(self, $name, $rule $(($($arg)*))?); )*
                Ok(())
            }

            /// Feeds every table parameter, in table order, to the digest.
            fn hash_params(&self, hasher: &mut blake3::Hasher) {
                $( hasher.update(&DigestValue::digest_value(&self.$name).to_le_bytes()); )*
            }
        }
    };
}

/// One rule of the table, checked on `$config.$name`.
macro_rules! check_rule {
    ($config:ident, $name:ident, positive) => {
        if $config.$name.is_zero() {
            return Err(invalid(stringify!($name), "must be greater than zero"));
        }
    };
    ($config:ident, $name:ident, below($other:ident)) => {
        if $config.$name >= $config.$other {
            return Err(invalid(
                stringify!($name),
                &format!(
                    "{:?} must be below {} {:?}",
                    $config.$name,
                    stringify!($other),
                    $config.$other
                ),
            ));
        }
    };
    ($config:ident, $name:ident, above($other:ident)) => {
        if $config.$name <= $config.$other {
            return Err(invalid(
                stringify!($name),
                &format!(
                    "{:?} must be above {} {:?}",
                    $config.$name,
                    stringify!($other),
                    $config.$other
                ),
            ));
        }
    };
    ($config:ident, $name:ident, between($min:literal, $max:expr)) => {
        if $config.$name < $min || $config.$name > $max {
            return Err(invalid(
                stringify!($name),
                &format!("{} must be between {} and {}", $config.$name, $min, $max),
            ));
        }
    };
    ($config:ident, $name:ident, at_least($min:literal)) => {
        if $config.$name < $min {
            return Err(invalid(
                stringify!($name),
                &format!("{} must be at least {}", $config.$name, $min),
            ));
        }
    };
}

for_each_consensus_param!(define_consensus_config);

/// How a parameter's value enters the digest: one u64.
trait DigestValue {
    fn digest_value(&self) -> u64;
}

impl DigestValue for Duration {
    /// Nanoseconds, saturating.
    fn digest_value(&self) -> u64 {
        u64::try_from(self.as_nanos()).unwrap_or(u64::MAX)
    }
}

impl DigestValue for u32 {
    fn digest_value(&self) -> u64 {
        u64::from(*self)
    }
}

impl ConsensusConfig {
    /// Checks every parameter; the error names the first one out of range.
    pub fn validate(&self) -> Result<()> {
        self.check_params()
    }

    /// Digest of every shared parameter, in the encoding the module documents.
    pub fn digest(&self) -> Digest {
        let mut hasher = blake3::Hasher::new();
        hasher.update(DIGEST_TAG);
        self.hash_params(&mut hasher);
        Digest(*hasher.finalize().as_bytes())
    }

    /// Largest message members send each other, in bytes: room for one
    /// command of `max_command_bytes` and its request id, and never less
    /// than [`MIN_MESSAGE_BYTES`]. Appends and catch-up batches are cut to
    /// fit (see [`ConsensusConfig::entry_budget`]).
    pub fn max_message_bytes(&self) -> usize {
        let command = usize::try_from(self.max_command_bytes).unwrap_or(usize::MAX);
        command
            .saturating_add(crate::entry::MAX_REQUEST_ID + MESSAGE_HEADROOM)
            .max(MIN_MESSAGE_BYTES)
    }

    /// Bytes of entries (each as `storage::entry_cost` counts it) one
    /// message may carry beyond its first.
    pub fn entry_budget(&self) -> usize {
        self.max_message_bytes() - MESSAGE_HEADROOM
    }

    /// A copy whose election timeout and bootstrap delay are `factor` times
    /// longer: this node is `Reluctant(factor)`.
    pub fn deprioritize_leadership_by(&self, factor: u32) -> Self {
        ConsensusConfig {
            leadership: LeadershipPreference::Reluctant(factor),
            ..self.clone()
        }
    }
}

/// How eagerly this node stands for election; per node, not hashed.
/// Python's `LeadershipPreference` wraps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LeadershipPreference {
    #[default]
    Normal,
    /// Replicates and applies, never stands, always abstains, never counts toward a quorum.
    Observer,
    /// Election timeout and bootstrap delay are multiplied by the factor.
    Reluctant(u32),
}

impl LeadershipPreference {
    /// `Reluctant(factor)`, refusing a factor below 1.
    pub fn reluctant(factor: u32) -> Result<Self> {
        if factor < 1 {
            return Err(invalid("factor", "must be at least 1"));
        }
        Ok(LeadershipPreference::Reluctant(factor))
    }

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
    fn a_reluctance_factor_is_at_least_one() {
        assert!(LeadershipPreference::reluctant(0).is_err());
        assert_eq!(
            LeadershipPreference::reluctant(3).map(LeadershipPreference::factor),
            Ok(3)
        );
    }

    #[test]
    fn leadership_factor_is_not_hashed() {
        let base = ConsensusConfig::default();
        assert_eq!(base.deprioritize_leadership_by(3).digest(), base.digest());
    }
}
