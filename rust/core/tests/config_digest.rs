//! Pins the digests that group ids derive from: a change of encoding would
//! silently split every deployed group, so the bytes are fixed here.

use std::time::Duration;

use mosaik_core::{ConsensusConfig, LogReplaySync};

fn non_default() -> ConsensusConfig {
    ConsensusConfig {
        heartbeat_interval: Duration::from_millis(250),
        heartbeat_jitter: Duration::from_millis(40),
        max_missed_heartbeats: 7,
        election_timeout: Duration::from_millis(1500),
        election_timeout_jitter: Duration::from_millis(300),
        bootstrap_delay: Duration::from_secs(4),
        forward_timeout: Duration::from_secs(5),
        query_timeout: Duration::from_millis(750),
        min_quorum: 2,
        max_command_bytes: 1 << 20,
        dedupe_window: 500,
        ..ConsensusConfig::default()
    }
}

#[test]
fn consensus_digest_of_the_default_config_is_pinned() {
    assert_eq!(
        ConsensusConfig::default().digest().to_hex(),
        "d845893412dda0c8f4e1a9297d21d526f651ce6d436899f55573ce8a7d3dd022"
    );
}

#[test]
fn consensus_digest_of_a_non_default_config_is_pinned() {
    assert_eq!(
        non_default().digest().to_hex(),
        "35d63dc54739f904a72383082786462c4b6823166dcb42cd48bc3e6fb8e00221"
    );
}

#[test]
fn deprioritized_leadership_keeps_the_pinned_digest() {
    assert_eq!(
        non_default().deprioritize_leadership_by(3).digest(),
        non_default().digest()
    );
}

#[test]
fn log_replay_signatures_are_pinned() {
    assert_eq!(
        LogReplaySync::default().signature().to_hex(),
        "1433ba581de5dc8d45dad18659afe17eefcbac9efae685992778d227a85ef39b"
    );
    let other = LogReplaySync {
        batch_size: 500,
        fetch_timeout: Duration::from_secs(10),
    };
    assert_eq!(
        other.signature().to_hex(),
        "471630950c286b3e5f96bf79d980496ffb4fd8af9e9fe90d4a086dbd771097de"
    );
}
