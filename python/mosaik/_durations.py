"""Duration arguments: float seconds or `datetime.timedelta` in, seconds out."""

from __future__ import annotations

from datetime import timedelta

from .exceptions import ConfigError

Duration = float | int | timedelta


def seconds(name: str, value: Duration) -> float:
    """The value in seconds; `ConfigError` naming ``name`` unless positive."""
    if isinstance(value, timedelta):
        secs = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        secs = float(value)
    else:
        raise ConfigError(f"invalid {name} {value!r}: expected seconds or a timedelta")
    if not secs > 0 or secs == float("inf"):
        raise ConfigError(f"invalid {name} {value!r}: must be a positive, finite duration")
    return secs
