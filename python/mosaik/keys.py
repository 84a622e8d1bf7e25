"""`GroupKey`: the shared secret that admits a node to a group."""

from __future__ import annotations

import os

from ._native import Digest
from .exceptions import ConfigError


class GroupKey:
    """A 32-byte group secret. Equal keys compare equal; `repr` hides it."""

    __slots__ = ("_secret",)

    def __init__(self, secret: Digest) -> None:
        if not isinstance(secret, Digest):
            raise TypeError(f"GroupKey takes a Digest, not {type(secret).__name__}")
        self._secret = secret

    @staticmethod
    def generate() -> GroupKey:
        """A new key from the operating system's random source."""
        return GroupKey(Digest.from_bytes(os.urandom(32)))

    @staticmethod
    def from_secret(secret: str | bytes | Digest) -> GroupKey:
        """64 hex chars or 32 bytes are the secret; anything else is hashed."""
        if isinstance(secret, Digest):
            return GroupKey(secret)
        if isinstance(secret, str):
            return GroupKey(Digest.from_str(secret))
        if isinstance(secret, bytes | bytearray | memoryview):
            return GroupKey(Digest.from_bytes(bytes(secret)))
        raise TypeError(f"a group secret is str, bytes or Digest, not {type(secret).__name__}")

    @staticmethod
    def from_hex(text: str) -> GroupKey:
        """Reads a key written by `to_hex`."""
        try:
            raw = bytes.fromhex(text)
        except (TypeError, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ConfigError("invalid group key: expected 64 hex characters")
        return GroupKey(Digest.from_bytes(raw))

    def to_hex(self) -> str:
        """The secret as 64 hex characters, for distribution to members."""
        return self._secret.hex()

    @property
    def secret(self) -> Digest:
        return self._secret

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GroupKey) and other._secret == self._secret

    def __hash__(self) -> int:
        return hash(("GroupKey", self._secret))

    def __repr__(self) -> str:
        return "GroupKey(<secret>)"


__all__ = ["GroupKey"]
