"""What both benchmark nodes share: the call limit and the answer lines."""

from __future__ import annotations

import sys
from collections import Counter as Tally

# A call that takes longer than this counts as failed.
CALL_LIMIT = 10.0


def percentile(samples: list[float], p: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


def seq_line(samples: list[float], failed: int, elapsed: float) -> str:
    """The answer to `seq`: count, failures, seconds, p50 and p99 in ms."""
    p50, p99 = percentile(samples, 0.5) * 1e3, percentile(samples, 0.99) * 1e3
    return f"SEQ {len(samples)} {failed} {elapsed:.6f} {p50:.6f} {p99:.6f}"


def tally(reasons: Tally[str]) -> str:
    return ",".join(f"{k}:{v}" for k, v in reasons.items()) or "-"


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
