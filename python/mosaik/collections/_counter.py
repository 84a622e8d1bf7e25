"""`Counter`: a replicated 64-bit integer."""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import Any

from ._base import Collection, CollectionMachine

log = logging.getLogger("mosaik")

_SET = 0
_LOW, _HIGH = -(1 << 63), (1 << 63) - 1


def _int64(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not _LOW <= value <= _HIGH:
        raise OverflowError(f"{what} {value} is outside the 64-bit range")
    return value


class CounterMachine(CollectionMachine):
    """An int; snapshots as ``[value]``. A command that is a bare int adds
    it (as compact as a command can be); ``[SET, n]`` sets. An add that
    would leave the 64-bit range changes nothing, on every node alike (each
    logs a warning)."""

    kind = "counter"

    def reset(self) -> None:
        self.value = 0

    def dump(self) -> list[int]:
        return [self.value]

    def load(self, state: list[Any]) -> None:
        self.value = state[0]

    def contents(self) -> int:
        return self.value

    def apply(self, command: Any, ctx: Any) -> Any:
        if type(command) is int:
            value = self.value + command
            if _LOW <= value <= _HIGH:
                self.value = value
                return True
            log.warning("counter %r: adding %d would leave 64 bits; unchanged", self.name, command)
            return False
        return self.OPS[command[0]](self, *command[1:])

    def _set(self, value: int) -> None:
        self.value = value

    OPS = (_set,)


class Counter(Collection):
    """A replicated integer (64-bit signed).

    Example:
        ```python
        hits = Counter.writer(net, "hits")
        await hits.add(1)
        hits.value          # 1
        ```
    """

    __slots__ = ()
    _machine_type = CounterMachine

    @property
    def value(self) -> int:
        """The value here."""
        value: int = self._machine.value
        return value

    def add(self, amount: int = 1, *, request_id: bytes | None = None) -> Coroutine[Any, Any, int]:
        """Adds ``amount`` (may be negative); the version. An add that would
        take the value outside 64 bits commits and changes nothing (the
        nodes log it)."""
        if type(amount) is not int or not _LOW <= amount <= _HIGH:
            _int64(amount, "amount")
        return self._execute(amount, request_id)

    def set(self, value: int, *, request_id: bytes | None = None) -> Coroutine[Any, Any, int]:
        """Sets the value; the version."""
        return self._execute([_SET, _int64(value, "value")], request_id)
