"""`PriorityQueue[K, V]`: replicated entries ordered by priority, keyed."""

from __future__ import annotations

import heapq
import math
from collections.abc import Coroutine
from typing import Any, Generic, NamedTuple, TypeVar

from ._base import Collection, CollectionMachine, copy_out, hashable

K = TypeVar("K")
V = TypeVar("V")

_INSERT, _POP_MIN, _POP_MAX, _REMOVE, _UPDATE = range(5)


class Entry(NamedTuple, Generic[K, V]):
    """One entry of a `PriorityQueue`."""

    key: K
    """The entry's key, unique in the queue."""
    value: V
    """The entry's value."""
    priority: float
    """The entry's priority (an int or a float, never NaN)."""


class PriorityQueueMachine(CollectionMachine):
    """Entries by key (``key -> [value, priority, seq]``) and two heaps of
    ``(priority, seq, key)`` (one negated) whose stale rows are skipped and
    dropped lazily. ``seq`` orders entries of equal priority by insertion,
    the same on every node, so no two rows ever compare their keys.
    Snapshots as ``[next_seq, k1, v1, p1, s1, ...]``; the heaps are rebuilt."""

    kind = "priority_queue"

    def reset(self) -> None:
        self._install({}, 0)

    def _install(self, entries: dict[Any, list[Any]], seq: int) -> None:
        low = [(p, s, k) for k, (_, p, s) in entries.items()]
        high = [(-p, s, k) for k, (_, p, s) in entries.items()]
        heapq.heapify(low)
        heapq.heapify(high)
        self.low, self.high, self.seq = low, high, seq
        self.entries: dict[Any, list[Any]] = entries

    def dump(self) -> list[Any]:
        flat: list[Any] = [self.seq]
        for key, (value, priority, seq) in self.entries.items():
            flat.extend((key, value, priority, seq))
        return flat

    def load(self, state: list[Any]) -> None:
        rows = state[1:]
        entries = {rows[i]: [rows[i + 1], rows[i + 2], rows[i + 3]] for i in range(0, len(rows), 4)}
        self._install(entries, state[0])

    def contents(self) -> list[Any]:
        return [[k, v, p] for k, (v, p, _) in self.entries.items()]

    def top(self, heap: list[tuple[Any, int, Any]]) -> Any:
        """The live key at the top of ``heap`` (stale rows popped), or the absent marker."""
        entries = self.entries
        while heap:
            _, seq, key = heap[0]
            entry = entries.get(key)
            if entry is not None and entry[2] == seq:
                return key
            heapq.heappop(heap)
        return _ABSENT

    def _add(self, key: Any, value: Any, priority: float) -> None:
        seq = self.seq
        self.seq = seq + 1
        self.entries[key] = [value, priority, seq]
        heapq.heappush(self.low, (priority, seq, key))
        heapq.heappush(self.high, (-priority, seq, key))
        self._compact()

    def _compact(self) -> None:
        """Rebuilds the heaps once stale rows outnumber live ones."""
        if max(len(self.low), len(self.high)) > 2 * len(self.entries) + 64:
            self._install(self.entries, self.seq)

    def _insert(self, key: Any, value: Any, priority: float) -> None:
        self._add(key, value, priority)

    def _pop(self, heap: list[tuple[Any, int, Any]]) -> list[Any] | None:
        key = self.top(heap)
        if key is _ABSENT:
            return None
        value, priority, _ = self.entries.pop(key)
        self._compact()
        return [key, value, priority]

    def _pop_min(self) -> list[Any] | None:
        return self._pop(self.low)

    def _pop_max(self) -> list[Any] | None:
        return self._pop(self.high)

    def _remove(self, key: Any) -> None:
        if self.entries.pop(key, None) is not None:
            self._compact()

    def _update(self, key: Any, priority: float) -> bool:
        entry = self.entries.get(key)
        if entry is None:
            return False
        if entry[1] != priority or type(entry[1]) is not type(priority):
            self._add(key, entry[0], priority)
        return True

    OPS = (_insert, _pop_min, _pop_max, _remove, _update)


_ABSENT = object()


def _priority(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"a priority is an int or a float, not {type(value).__name__}")
    if isinstance(value, float) and math.isnan(value):
        raise ValueError("a priority must not be NaN")
    return value


def _entry(row: list[Any] | None) -> Entry[Any, Any] | None:
    return None if row is None else Entry(row[0], row[1], row[2])


class PriorityQueue(Collection, Generic[K, V]):
    """Replicated entries with a unique key, a value and a priority; both
    ends are cheap. Entries of equal priority leave in insertion order.

    Example:
        ```python
        jobs = PriorityQueue[str, dict[str, int]].writer(net, "jobs")
        await jobs.insert("job-7", {"size": 3}, priority=1)
        entry = await jobs.pop_min()     # Entry("job-7", {"size": 3}, 1)
        ```
    """

    __slots__ = ()
    _machine_type = PriorityQueueMachine

    # -- local reads --------------------------------------------------------

    def _peek(self, low: bool) -> Entry[K, V] | None:
        def peek(m: PriorityQueueMachine) -> Entry[K, V] | None:
            key = m.top(m.low if low else m.high)
            if key is _ABSENT:
                return None
            value, priority, _ = m.entries[key]
            return Entry(key, copy_out(value), priority)

        return self._locked(peek)

    def peek_min(self) -> Entry[K, V] | None:
        """The entry of lowest priority here (None when empty)."""
        return self._peek(True)

    def peek_max(self) -> Entry[K, V] | None:
        """The entry of highest priority here (None when empty)."""
        return self._peek(False)

    def get(self, key: K) -> Entry[K, V] | None:
        """The entry of ``key`` here, or None."""
        entry = self._machine.entries.get(key)
        return None if entry is None else Entry(key, copy_out(entry[0]), entry[1])

    def __contains__(self, key: object) -> bool:
        return key in self._machine.entries

    def __len__(self) -> int:
        return len(self._machine.entries)

    # -- writes -------------------------------------------------------------

    def insert(
        self, key: K, value: V, priority: float, *, request_id: bytes | None = None
    ) -> Coroutine[Any, Any, int]:
        """Adds the entry (replacing one of the same key); the version."""
        command = [_INSERT, hashable(key, "key"), value, _priority(priority)]
        return self._execute(command, request_id)

    async def pop_min(self, *, request_id: bytes | None = None) -> Entry[K, V] | None:
        """Removes and returns the entry of lowest priority (None when
        empty), exactly once."""
        return _entry(await self._call([_POP_MIN], request_id))

    async def pop_max(self, *, request_id: bytes | None = None) -> Entry[K, V] | None:
        """Removes and returns the entry of highest priority (None when
        empty), exactly once."""
        return _entry(await self._call([_POP_MAX], request_id))

    def remove(self, key: K, *, request_id: bytes | None = None) -> Coroutine[Any, Any, int]:
        """Removes the entry of ``key`` if present; the version."""
        return self._execute([_REMOVE, hashable(key, "key")], request_id)

    def update_priority(
        self, key: K, priority: float, *, request_id: bytes | None = None
    ) -> Coroutine[Any, Any, int]:
        """Gives the entry of ``key`` a new priority (nothing if absent); the
        version. The entry goes behind others of the new priority (it keeps
        its place when the priority does not change)."""
        command = [_UPDATE, hashable(key, "key"), _priority(priority)]
        return self._execute(command, request_id)
