"""Consensus settings: `ConsensusConfig` (native) and its builder.

The parameters are defined once, in the native parameter table; the
builder reads their names from `ConsensusConfig`'s keyword arguments, so it
has a ``with_<parameter>`` method for each without listing any.

Example:
    ```python
    config = (
        mosaik.ConsensusConfig.builder()
        .with_min_quorum(2)
        .with_election_timeout(timedelta(seconds=1))
        .build()
    )
    assert config == mosaik.ConsensusConfig(min_quorum=2, election_timeout=1.0)
    ```
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from ._durations import Duration
from ._native import ConsensusConfig

PARAMETERS: tuple[str, ...] = tuple(
    p.name
    for p in inspect.signature(ConsensusConfig).parameters.values()
    if p.kind is inspect.Parameter.KEYWORD_ONLY
)
"""Names of the consensus parameters, in the native table's order."""

_PREFIX = "with_"


class ConsensusConfigBuilder:
    """Collects parameters one ``with_<parameter>(value)`` call at a time;
    ``build()`` validates them all at once (``ConfigError`` naming the first
    bad one). Calls may come in any order; a later call for the same
    parameter wins."""

    def __init__(self) -> None:
        """A builder with no parameter set (`ConsensusConfig.builder()`
        makes one)."""
        self._overrides: dict[str, Any] = {}

    def __getattr__(self, attr: str) -> Callable[[Duration], ConsensusConfigBuilder]:
        name = attr.removeprefix(_PREFIX)
        if name == attr or name not in PARAMETERS:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {attr!r}")

        def set_parameter(value: Duration) -> ConsensusConfigBuilder:
            self._overrides[name] = value
            return self

        set_parameter.__name__ = attr
        set_parameter.__doc__ = f"Sets ``{name}``; returns the builder."
        return set_parameter

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *(_PREFIX + name for name in PARAMETERS)})

    def build(self) -> ConsensusConfig:
        """The `ConsensusConfig` of the parameters given so far (the others
        at their defaults); `ConfigError` naming the first invalid one."""
        return ConsensusConfig(**self._overrides)


__all__ = ["ConsensusConfig", "ConsensusConfigBuilder"]
