"""Consensus timing presets. Every member of a group must use the same one:
the timings are part of the `GroupId`."""

from __future__ import annotations

from typing import Any

from .._native import ConsensusConfig

FAST: dict[str, Any] = {
    "heartbeat_interval": 0.1,
    "heartbeat_jitter": 0.02,
    "max_missed_heartbeats": 5,
    "election_timeout": 0.5,
    "election_timeout_jitter": 0.15,
    "bootstrap_delay": 0.3,
    "forward_timeout": 1.0,
    "query_timeout": 1.0,
}

PRESETS = ("default", "fast")


def consensus_for(preset: str, min_quorum: int = 1) -> ConsensusConfig:
    """``default``: mosaik's defaults (LAN/WAN); ``fast``: 0.1 s heartbeats,
    0.5 s election timeout, for one machine or a quiet LAN; with
    ``min_quorum`` voters needed for an election or a commit."""
    timings = FAST if preset == "fast" else {}
    return ConsensusConfig(**timings, min_quorum=min_quorum)


__all__ = ["FAST", "PRESETS", "consensus_for"]
