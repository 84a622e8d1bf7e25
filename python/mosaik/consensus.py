"""Consensus settings: `ConsensusConfig` (native) and its builder."""

from __future__ import annotations

from typing import Any

from ._durations import Duration
from ._native import ConsensusConfig


class ConsensusConfigBuilder:
    """Collects parameters one `with_*` call at a time; `build()` validates."""

    def __init__(self) -> None:
        self._overrides: dict[str, Any] = {}

    def _set(self, name: str, value: Any) -> ConsensusConfigBuilder:
        self._overrides[name] = value
        return self

    def with_heartbeat_interval(self, value: Duration) -> ConsensusConfigBuilder:
        return self._set("heartbeat_interval", value)

    def with_heartbeat_jitter(self, value: Duration) -> ConsensusConfigBuilder:
        return self._set("heartbeat_jitter", value)

    def with_max_missed_heartbeats(self, value: int) -> ConsensusConfigBuilder:
        return self._set("max_missed_heartbeats", value)

    def with_election_timeout(self, value: Duration) -> ConsensusConfigBuilder:
        return self._set("election_timeout", value)

    def with_election_timeout_jitter(self, value: Duration) -> ConsensusConfigBuilder:
        return self._set("election_timeout_jitter", value)

    def with_bootstrap_delay(self, value: Duration) -> ConsensusConfigBuilder:
        return self._set("bootstrap_delay", value)

    def with_forward_timeout(self, value: Duration) -> ConsensusConfigBuilder:
        return self._set("forward_timeout", value)

    def with_query_timeout(self, value: Duration) -> ConsensusConfigBuilder:
        return self._set("query_timeout", value)

    def with_min_quorum(self, value: int) -> ConsensusConfigBuilder:
        return self._set("min_quorum", value)

    def build(self) -> ConsensusConfig:
        return ConsensusConfig(**self._overrides)


__all__ = ["ConsensusConfig", "ConsensusConfigBuilder"]
