"""Machine versions: how a group moves its state machine to new code
without a new `GroupId`.

A machine's class says the newest version its code applies
(`StateMachine.version`). The version the group runs is replicated state:
it starts at 1 and changes only at a committed switch entry, so every
member moves at the same log index. The apply layer keeps the machine's
``active_version`` equal to it (after a switch, a restore and a rebuild)
and calls the machine's ``upgrade`` hook at the switch. A switch is a command with a reserved
request key (``b"\\x00mosaik/version/<n>"``) that the apply layer handles
itself; callers' request ids may not start with `CONTROL_PREFIX`.
"""

from __future__ import annotations

from typing import Any

from .exceptions import ConfigError

CONTROL_PREFIX = b"\x00mosaik/"
"""Request ids starting with these bytes are mosaik's own."""

_SWITCH = CONTROL_PREFIX + b"version/"

MAX_VERSION = 2**32 - 1
"""The highest machine version (peers read it as 32 bits)."""


def switch_key(version: int) -> tuple[bytes, int]:
    """The request key of the entry that switches the group to ``version``."""
    return (_SWITCH + str(version).encode(), 0)


def switch_of(request_id: bytes) -> int | None:
    """The version a control request id switches to; ``None`` for any other
    control entry (a later mosaik's, which this one leaves alone)."""
    if not request_id.startswith(_SWITCH):
        return None
    digits = request_id[len(_SWITCH) :]
    return int(digits) if digits.isdigit() else None


def supported_version(machine: Any) -> int:
    """The newest version ``machine``'s code applies: its ``version``
    attribute (1 if it has none), an int from 1 to `MAX_VERSION`."""
    version = getattr(machine, "version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise ConfigError(
            f"{type(machine).__name__}.version must be an int from 1 to {MAX_VERSION}, "
            f"not {version!r}"
        )
    return version


class UnsupportedVersion(RuntimeError):
    """The group switched to a machine version this node's code does not
    apply; the machine on this node stops (the native side logs this)."""
