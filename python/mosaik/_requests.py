"""What the apply layer keeps beside the state machine.

- `AppliedRequests`: the request keys applied within the group's last
  ``dedupe_window`` entries, with the index and outcome of their first
  application. It is replicated state: every node decides a duplicate the
  same way (by log index alone), and it travels inside every snapshot.
- `Results`: what ``apply`` returned, kept only from the moment a `call`
  starts waiting until the calls waiting have collected theirs.
- The snapshot envelope that carries the request table and the group's
  machine version in front of the machine's own snapshot.
"""

from __future__ import annotations

import struct
from collections import deque
from typing import Any

from .codec import MSGPACK, Codec

Key = tuple[bytes, int]
"""A request key: the caller's request id and the command's place in its batch."""


class Raised:
    """``apply`` raised ``error`` (for a table restored from a snapshot, an
    exception standing for the original, which did not survive)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class Duplicate:
    """The command repeated a request applied first at ``first``, whose
    outcome was ``outcome``; it applied nothing."""

    __slots__ = ("first", "outcome")

    def __init__(self, first: int, outcome: Any) -> None:
        self.first = first
        self.outcome = outcome


class NotKept:
    """The outcome was not kept: the first application's result could not
    be encoded into the snapshot this node restored from."""

    __slots__ = ()


NOT_KEPT = NotKept()

# Outcome kinds in a snapshot's request table.
_RESULT, _RAISED, _NOT_KEPT = 0, 1, 2


class AppliedRequests:
    """Request keys applied within the last ``window`` entries."""

    __slots__ = ("first", "order", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self.first: dict[Key, tuple[int, Any]] = {}
        self.order: deque[tuple[int, Key]] = deque()

    def lookup(self, key: Key, index: int) -> tuple[int, Any] | None:
        """The first application of ``key`` if it lies within the window
        seen from ``index``."""
        self._expire(index)
        return self.first.get(key)

    def record(self, key: Key, index: int, outcome: Any) -> None:
        self.first[key] = (index, outcome)
        self.order.append((index, key))

    def clear(self) -> None:
        self.first.clear()
        self.order.clear()

    def _expire(self, index: int) -> None:
        horizon = index - self.window
        order, first = self.order, self.first
        while order and order[0][0] <= horizon:
            at, key = order.popleft()
            if first.get(key, (0, None))[0] == at:
                del first[key]

    def encode(self, index: int, codec: Codec) -> bytes:
        """The table as it stands at ``index``, outcomes through ``codec``
        where it can encode them."""
        self._expire(index + 1)
        rows = []
        for (request_id, seq), (at, outcome) in self.first.items():
            if isinstance(outcome, Raised):
                try:
                    text = repr(outcome.error)
                except Exception:
                    text = type(outcome.error).__name__
                rows.append([request_id, seq, at, _RAISED, text.encode()])
                continue
            try:
                rows.append([request_id, seq, at, _RESULT, codec.encode(outcome)])
            except Exception:
                rows.append([request_id, seq, at, _NOT_KEPT, b""])
        return MSGPACK.encode(rows)

    def restore(self, data: bytes, codec: Codec) -> None:
        """Replaces the table with one `encode` made."""
        self.clear()
        for request_id, seq, at, kind, payload in MSGPACK.decode(data):
            outcome: Any = NOT_KEPT
            if kind == _RESULT:
                # A codec that encodes this result but cannot decode it
                # must not stop the restore: the result is then not known.
                try:
                    outcome = codec.decode(payload)
                except Exception:
                    outcome = NOT_KEPT
            elif kind == _RAISED:
                outcome = Raised(RuntimeError(payload.decode(errors="replace")))
            self.record((request_id, seq), at, outcome)


class Results:
    """What ``apply`` returned per index, kept while a call waits: a call
    starts watching before it proposes, with a floor its command's index
    will be above, so every index it can get is recorded; values at or
    below the oldest waiting call's floor are dropped. Tickets are made in
    the order of their floors (commit indices only grow)."""

    __slots__ = ("values", "waiting")

    def __init__(self) -> None:
        self.values: dict[int, Any] = {}
        self.waiting: deque[list[Any]] = deque()

    @property
    def keeping(self) -> bool:
        return bool(self.waiting)

    def floor(self) -> int | None:
        """Values are kept for indices above this one; ``None``: none are."""
        waiting = self.waiting
        return waiting[0][0] if waiting else None

    def wants(self, index: int) -> bool:
        floor = self.floor()
        return floor is not None and index > floor

    def watch(self, floor: int) -> list[Any]:
        """A ticket for a call whose command will sit above ``floor``."""
        ticket = [floor, False]
        waiting = self.waiting
        if waiting and waiting[-1][0] > floor:
            # The commit index went back (a losing branch was cut): the
            # earlier tickets keep from here too, so the oldest stays lowest.
            for earlier in waiting:
                earlier[0] = min(earlier[0], floor)
        waiting.append(ticket)
        return ticket

    def unwatch(self, ticket: list[Any]) -> None:
        ticket[1] = True
        waiting, values = self.waiting, self.values
        while waiting and waiting[0][1]:
            waiting.popleft()
        if not waiting:
            values.clear()
            return
        floor = waiting[0][0]
        while values:
            oldest = next(iter(values))
            if oldest > floor:
                break
            values.pop(oldest, None)


# The snapshot envelope: a tag, the request table's length (8 bytes) and
# the group's machine version (4 bytes), both little-endian, the table, then
# the machine's snapshot. Snapshots of earlier releases carry the first tag
# (no version: 1) or none at all (no table either).
_ENVELOPE = b"\x00mosaik.replica.v2\x00"
_HEADER = struct.Struct("<QI")
_ENVELOPE_V1 = b"\x00mosaik.requests.v1\x00"
_LENGTH_V1 = struct.Struct("<Q")


def wrap(table: bytes, version: int, machine: bytes) -> bytes:
    """A snapshot: the request table, the machine version and the machine's bytes."""
    return b"".join((_ENVELOPE, _HEADER.pack(len(table), version), table, machine))


def unwrap(data: bytes) -> tuple[bytes | None, int, bytes]:
    """(request table, machine version, machine snapshot) of a snapshot."""
    if data.startswith(_ENVELOPE):
        start = len(_ENVELOPE) + _HEADER.size
        length, version = _HEADER.unpack_from(data, len(_ENVELOPE))
    elif data.startswith(_ENVELOPE_V1):
        start = len(_ENVELOPE_V1) + _LENGTH_V1.size
        (length,) = _LENGTH_V1.unpack_from(data, len(_ENVELOPE_V1))
        version = 1
    else:
        return None, 1, data
    if start + length > len(data):
        raise ValueError("the snapshot's request table is cut short")
    return data[start : start + length], version, data[start + length :]
