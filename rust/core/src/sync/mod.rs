//! LogReplaySync: catching a lagging node up by fetching committed entries
//! from many peers at once. This module owns the settings (shared by the
//! group, hashed into its id); `replay` owns the lagging node's session and
//! `snapshot` its snapshot fetch when the gap was compacted away; both run
//! their fetches on the one scheduler in `fetch` (peer choice aside).
//! The provider side is a pure function of a node's log (see
//! `raft/catch_up.rs`).

mod fetch;
mod replay;
mod snapshot;

use std::time::Duration;

pub use replay::ReplaySession;
pub use snapshot::{SnapshotFetch, SNAPSHOT_CHUNK};

use crate::error::{Error, Result};
use crate::ids::Digest;

const SIGNATURE_NAME: &[u8] = b"mosaik_log_replay_sync";

/// Settings of log replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogReplaySync {
    /// Entries per fetch request.
    pub batch_size: u64,
    /// How long one fetch may take before it is retried at another peer.
    pub fetch_timeout: Duration,
}

impl Default for LogReplaySync {
    fn default() -> Self {
        LogReplaySync {
            batch_size: 2000,
            fetch_timeout: Duration::from_secs(25),
        }
    }
}

impl LogReplaySync {
    /// Checks both settings; the error names the first one out of range.
    pub fn validate(&self) -> Result<()> {
        if self.batch_size < 1 {
            return Err(Error::Config("batch_size must be at least 1".into()));
        }
        if self.fetch_timeout.is_zero() {
            return Err(Error::Config(
                "fetch_timeout must be greater than zero".into(),
            ));
        }
        Ok(())
    }

    /// blake3 of the name, then batch size and fetch timeout (nanoseconds)
    /// as little-endian u64.
    pub fn signature(&self) -> Digest {
        let mut hasher = blake3::Hasher::new();
        hasher.update(SIGNATURE_NAME);
        hasher.update(&self.batch_size.to_le_bytes());
        let nanos = u64::try_from(self.fetch_timeout.as_nanos()).unwrap_or(u64::MAX);
        hasher.update(&nanos.to_le_bytes());
        Digest(*hasher.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_covers_both_settings() {
        let base = LogReplaySync::default();
        let bigger = LogReplaySync {
            batch_size: 2001,
            ..base
        };
        let slower = LogReplaySync {
            fetch_timeout: Duration::from_secs(26),
            ..base
        };
        assert_ne!(base.signature(), bigger.signature());
        assert_ne!(base.signature(), slower.signature());
        assert_eq!(base.signature(), LogReplaySync::default().signature());
    }

    #[test]
    fn validate_names_the_setting_out_of_range() {
        assert_eq!(LogReplaySync::default().validate(), Ok(()));
        let empty = LogReplaySync {
            batch_size: 0,
            ..Default::default()
        };
        let instant = LogReplaySync {
            fetch_timeout: Duration::ZERO,
            ..Default::default()
        };
        assert!(empty
            .validate()
            .unwrap_err()
            .to_string()
            .contains("batch_size"));
        assert!(instant
            .validate()
            .unwrap_err()
            .to_string()
            .contains("fetch_timeout"));
    }
}
