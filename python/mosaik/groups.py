"""The groups subsystem: its settings, ALPN and handshake close codes."""

from __future__ import annotations

import enum
from datetime import timedelta

from . import _native
from ._durations import Duration

ALPN: bytes = _native.GROUPS_ALPN


class CloseReason(enum.IntEnum):
    """QUIC application close codes of a refused bond handshake."""

    INVALID_HANDSHAKE = 30400
    GROUP_NOT_FOUND = 30404
    INVALID_PROOF = 30405
    TIMEOUT = 30408
    ALREADY_BONDED = 30429


def _checked(handshake_timeout: Duration | None) -> timedelta:
    """The timeout as the network's settings check it (the one rule for it);
    the network's default for None."""
    options = _native.NetworkOptions("groups").replace(handshake_timeout=handshake_timeout)
    return options.handshake_timeout


class Config:
    """Settings of the groups subsystem of one `Network`."""

    __slots__ = ("_handshake_timeout",)

    def __init__(self, handshake_timeout: Duration | None = None) -> None:
        self._handshake_timeout = _checked(handshake_timeout)

    @property
    def handshake_timeout(self) -> timedelta:
        """How long a bond handshake may take (default 2 s)."""
        return self._handshake_timeout

    @staticmethod
    def builder() -> ConfigBuilder:
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
        self._handshake_timeout: Duration | None = None

    def with_handshake_timeout(self, timeout: Duration) -> ConfigBuilder:
        self._handshake_timeout = _checked(timeout)
        return self

    def build(self) -> Config:
        return Config(handshake_timeout=self._handshake_timeout)


__all__ = ["ALPN", "CloseReason", "Config", "ConfigBuilder"]
