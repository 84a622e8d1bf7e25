"""Consensus parameters: pinned digests, and the native table, stub and builder agreeing."""

from __future__ import annotations

from datetime import timedelta

import mosaik

# Group ids derive from these digests; a change of encoding splits every
# deployed group, so the values are pinned.
DEFAULT_DIGEST = "c23f5bde88d08c601d2a1a1d44c0cef8fbc8fe5b742bb6bae3071df94e1453ac"
NON_DEFAULT_DIGEST = "8ddc47b17a0adb90222be52be0ce9cf3b1dbf2a53fe957adb75bdb9a3d5010fd"
DEFAULT_REPLAY_SIGNATURE = "1433ba581de5dc8d45dad18659afe17eefcbac9efae685992778d227a85ef39b"


def non_default() -> mosaik.ConsensusConfig:
    return mosaik.ConsensusConfig(
        heartbeat_interval=0.25,
        heartbeat_jitter=timedelta(milliseconds=40),
        max_missed_heartbeats=7,
        election_timeout=1.5,
        election_timeout_jitter=0.3,
        bootstrap_delay=4,
        forward_timeout=5,
        query_timeout=0.75,
        min_quorum=2,
    )


def test_digest_of_the_default_config_is_pinned() -> None:
    assert mosaik.ConsensusConfig().digest().hex() == DEFAULT_DIGEST


def test_digest_of_a_non_default_config_is_pinned() -> None:
    assert non_default().digest().hex() == NON_DEFAULT_DIGEST
    assert non_default().deprioritize_leadership().digest().hex() == NON_DEFAULT_DIGEST


def test_log_replay_signature_is_pinned() -> None:
    assert mosaik.LogReplaySync().signature().hex() == DEFAULT_REPLAY_SIGNATURE
