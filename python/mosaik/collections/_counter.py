"""`Counter`: a replicated 64-bit integer."""

from __future__ import annotations

import logging
from typing import Any

from ._base import Collection, CollectionMachine

log = logging.getLogger("mosaik")

_ADD, _SET = range(2)
_LOW, _HIGH = -(1 << 63), (1 << 63) - 1


def _int64(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not _LOW <= value <= _HIGH:
        raise OverflowError(f"{what} {value} is outside the 64-bit range")
    return value


class CounterMachine(CollectionMachine):
    """An int; snapshots as ``[value]``. An add that would leave the 64-bit
    range changes nothing, on every node alike (each logs a warning)."""

    kind = "counter"

    def reset(self) -> None:
        self.value = 0

    def dump(self) -> list[int]:
        return [self.value]

    def load(self, state: list[Any]) -> None:
        self.value = state[0]

    def contents(self) -> int:
        return self.value

    def _add(self, amount: int) -> bool:
        value = self.value + amount
        if not _LOW <= value <= _HIGH:
            log.warning("counter %r: adding %d would leave 64 bits; unchanged", self.name, amount)
            return False
        self.value = value
        return True

    def _set(self, value: int) -> None:
        self.value = value

    OPS = (_add, _set)


class Counter(Collection):
    """A replicated integer (64-bit signed).

    >>> hits = Counter.writer(net, "hits")
    >>> await hits.add(1)
    >>> hits.value
    1
    """

    __slots__ = ()
    _machine_type = CounterMachine

    @property
    def value(self) -> int:
        """The value here."""
        value: int = self._machine.value
        return value

    async def add(self, amount: int = 1, *, request_id: bytes | None = None) -> int:
        """Adds ``amount`` (may be negative); the version. An add that would
        take the value outside 64 bits commits and changes nothing (the
        nodes log it)."""
        return await self._execute([_ADD, _int64(amount, "amount")], request_id)

    async def set(self, value: int, *, request_id: bytes | None = None) -> int:
        """Sets the value; the version."""
        return await self._execute([_SET, _int64(value, "value")], request_id)
