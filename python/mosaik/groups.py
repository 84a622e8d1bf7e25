"""The groups subsystem: its settings, ALPN and handshake close codes.

`Config` holds the one setting of the subsystem, the bond handshake
timeout; pass it to `NetworkBuilder.with_groups`. `ALPN` and `CloseReason`
are wire facts, useful when reading logs or packet captures.

Example:
    ```python
    config = mosaik.groups.Config.builder().with_handshake_timeout(5).build()
    net = await mosaik.Network.builder("my-app").with_groups(config).build()
    ```
"""

from __future__ import annotations

import enum
from datetime import timedelta

from . import _native
from ._durations import Duration

ALPN: bytes = _native.GROUPS_ALPN
"""The ALPN protocol id of bond connections, ``b"/mosaik/groups/1"``."""


class CloseReason(enum.IntEnum):
    """QUIC application close codes of a refused bond handshake.

    A node that refuses a bond closes the connection with one of these; a
    `NetworkError` carries it as ``code``, and the metric
    ``mosaik.groups.bonds.rejected`` counts refusals by reason.
    """

    INVALID_HANDSHAKE = 30400
    """The handshake message did not decode."""
    GROUP_NOT_FOUND = 30404
    """The acceptor has not joined the group the initiator asked for (the
    same key with another state machine, consensus or sync setting gives
    another `GroupId`, so it shows up here too)."""
    INVALID_PROOF = 30405
    """The proof of the group key did not verify: the peer does not hold
    the key."""
    TIMEOUT = 30408
    """No handshake message came within ``handshake_timeout``."""
    ALREADY_BONDED = 30429
    """The two nodes have a bond in this group already."""


def _checked(handshake_timeout: Duration | None) -> timedelta:
    """The timeout as the network's settings check it (the one rule for it);
    the network's default for None."""
    options = _native.NetworkOptions("groups").replace(handshake_timeout=handshake_timeout)
    return options.handshake_timeout


class Config:
    """Settings of the groups subsystem of one `Network`.

    Example:
        ```python
        config = mosaik.groups.Config(handshake_timeout=timedelta(seconds=5))
        assert config.handshake_timeout == timedelta(seconds=5)
        ```
    """

    __slots__ = ("_handshake_timeout",)

    def __init__(self, handshake_timeout: Duration | None = None) -> None:
        """``handshake_timeout`` in float seconds or a `timedelta` (default
        2 s); `ConfigError` for zero or a negative value."""
        self._handshake_timeout = _checked(handshake_timeout)

    @property
    def handshake_timeout(self) -> timedelta:
        """How long a bond handshake may take (default 2 s)."""
        return self._handshake_timeout

    @staticmethod
    def builder() -> ConfigBuilder:
        """A `ConfigBuilder` with every setting at its default."""
        return ConfigBuilder()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and other._handshake_timeout == self._handshake_timeout

    def __hash__(self) -> int:
        return hash(self._handshake_timeout)

    def __repr__(self) -> str:
        return f"Config(handshake_timeout={self._handshake_timeout.total_seconds()})"


class ConfigBuilder:
    """Builds a `Config` one setting at a time."""

    def __init__(self) -> None:
        """A builder with every setting at its default."""
        self._handshake_timeout: Duration | None = None

    def with_handshake_timeout(self, timeout: Duration) -> ConfigBuilder:
        """How long a bond handshake may take (float seconds or a
        `timedelta`); checked at once. Returns the builder."""
        self._handshake_timeout = _checked(timeout)
        return self

    def build(self) -> Config:
        """The `Config` of the settings given so far."""
        return Config(handshake_timeout=self._handshake_timeout)


__all__ = ["ALPN", "CloseReason", "Config", "ConfigBuilder"]
