"""Fast consensus timings shared by every test and test process."""

from __future__ import annotations

from typing import Any

FAST: dict[str, Any] = {
    "heartbeat_interval": 0.05,
    "heartbeat_jitter": 0.01,
    "max_missed_heartbeats": 10,
    "election_timeout": 0.3,
    "election_timeout_jitter": 0.1,
    "bootstrap_delay": 0.1,
    "forward_timeout": 1.0,
    "query_timeout": 1.0,
}
