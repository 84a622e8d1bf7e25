"""`Cell[T]`: one replicated value, or none."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Generic, TypeVar

from ._base import Collection, CollectionMachine, copy_out, same

T = TypeVar("T")

_SET, _CLEAR, _SWAP = range(3)


class CellMachine(CollectionMachine):
    """One value (None: empty); snapshots as ``[value]``."""

    kind = "cell"

    def reset(self) -> None:
        self.value: Any = None

    def dump(self) -> list[Any]:
        return [self.value]

    def load(self, state: list[Any]) -> None:
        self.value = state[0]

    def contents(self) -> Any:
        return self.value

    def _set(self, value: Any) -> None:
        self.value = value

    def _clear(self) -> None:
        self.value = None

    def _swap(self, expected: Any, new: Any) -> bool:
        if not same(self.value, expected):
            return False
        self.value = new
        return True

    OPS = (_set, _clear, _swap)


class Cell(Collection, Generic[T]):
    """One replicated value; ``None`` means empty.

    Example:
        ```python
        owner = Cell[str].writer(net, "owner")
        ok = await owner.compare_exchange(None, "worker-7")  # only if empty
        owner.get()                                          # "worker-7" if ok
        ```
    """

    __slots__ = ()
    _machine_type = CellMachine

    def get(self) -> T | None:
        """The value here (None when empty)."""
        value: T | None = copy_out(self._machine.value)
        return value

    def set(self, value: T, *, request_id: bytes | None = None) -> Coroutine[Any, Any, int]:
        """Replaces the value; the version."""
        return self._execute([_SET, value], request_id)

    def clear(self, *, request_id: bytes | None = None) -> Coroutine[Any, Any, int]:
        """Empties the cell; the version."""
        return self._execute([_CLEAR], request_id)

    async def compare_exchange(
        self, expected: T | None, new: T | None, *, request_id: bytes | None = None
    ) -> bool:
        """Sets ``new`` if the value is ``expected`` when the command applies
        (None: empty). A failed exchange commits as a no-op and returns False."""
        result: bool = await self._call([_SWAP, expected, new], request_id)
        return result
