"""`GroupKey`: the shared secret that admits a node to a group."""

from __future__ import annotations

import os

from ._native import Digest, group_secret
from .exceptions import ConfigError


class GroupKey:
    """A 32-byte group secret. Equal keys compare equal; `repr` hides it.

    The key is the only admission control of a group: a node that knows it
    can bond with the members, propose commands and read the state. Every
    member needs the same key; it never leaves the node (the handshake
    proves knowledge of it without sending it).

    Example:
        ```python
        key = mosaik.GroupKey.generate()
        text = key.to_hex()                     # hand this to every member
        assert mosaik.GroupKey.from_hex(text) == key
        ```
    """

    __slots__ = ("_secret",)

    def __init__(self, secret: Digest) -> None:
        """Wraps ``secret`` as it is (use `generate`, `from_secret` or
        `from_hex` to make one); `TypeError` for anything but a `Digest`."""
        if not isinstance(secret, Digest):
            raise TypeError(f"GroupKey takes a Digest, not {type(secret).__name__}")
        self._secret = secret

    @staticmethod
    def generate() -> GroupKey:
        """A new key from the operating system's random source."""
        return GroupKey(Digest.from_bytes(os.urandom(32)))

    @staticmethod
    def from_secret(secret: str | bytes | Digest, *, network: str | None = None) -> GroupKey:
        """A `Digest`, 32 bytes or 64 hex characters are the secret as they are.

        Anything else is a passphrase: it is stretched with Argon2id (64 MiB,
        3 passes; about 150 ms, with the GIL released), because
        the `GroupId` derived from the key is public and lets anyone test
        guesses offline. ``network`` salts the stretching: every member must
        pass the same name (or none). A random key (`generate`) is still
        better than any passphrase. An empty passphrase raises `ConfigError`.
        """
        if isinstance(secret, Digest):
            return GroupKey(secret)
        if isinstance(secret, bytearray | memoryview):
            secret = bytes(secret)
        if not isinstance(secret, str | bytes):
            raise TypeError(f"a group secret is str, bytes or Digest, not {type(secret).__name__}")
        return GroupKey(group_secret(secret, network))

    @staticmethod
    def from_hex(text: str) -> GroupKey:
        """Reads a key written by `to_hex` (or by ``mosaik keygen --group``);
        `ConfigError` unless ``text`` is 64 hex characters."""
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
        """The secret itself, as a `Digest`. The `GroupId` starts from
        ``secret.hashed()``."""
        return self._secret

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GroupKey) and other._secret == self._secret

    def __hash__(self) -> int:
        return hash(("GroupKey", self._secret))

    def __repr__(self) -> str:
        return "GroupKey(<secret>)"


__all__ = ["GroupKey"]
