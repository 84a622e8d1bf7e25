"""`Vec[T]`: a replicated list, cheap at both ends."""

from __future__ import annotations

from collections import deque
from collections.abc import Coroutine, Iterable, Iterator
from itertools import islice
from typing import Any, Generic, TypeVar, overload

from ._base import Collection, DequeMachine, copy_out

T = TypeVar("T")

_PUSH_BACK, _PUSH_FRONT, _POP_BACK, _POP_FRONT, _INSERT, _REMOVE, _EXTEND, _TRUNCATE, _CLEAR = (
    range(9)
)


class VecMachine(DequeMachine):
    """A deque; snapshots as one list."""

    kind = "vec"

    def _push_back(self, item: Any) -> None:
        self.items.append(item)

    def _push_front(self, item: Any) -> None:
        self.items.appendleft(item)

    def _pop_back(self) -> Any:
        return self.items.pop() if self.items else None

    def _pop_front(self) -> Any:
        return self.items.popleft() if self.items else None

    def _insert(self, index: int, item: Any) -> None:
        self.items.insert(index, item)

    def _remove(self, index: int) -> None:
        if -len(self.items) <= index < len(self.items):
            del self.items[index]

    def _extend(self, items: list[Any]) -> None:
        self.items.extend(items)

    def _truncate(self, length: int) -> None:
        if len(self.items) > length:
            self.items = deque(islice(self.items, length))

    def _clear(self) -> None:
        self.items = deque()

    OPS = (
        _push_back,
        _push_front,
        _pop_back,
        _pop_front,
        _insert,
        _remove,
        _extend,
        _truncate,
        _clear,
    )


def _index(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    return value


class Vec(Collection, Generic[T]):
    """A replicated list. Indices are as for a Python list (negative ones
    count from the end); the pops return the item or None when empty.

    Example:
        ```python
        events = Vec[str].writer(net, "events")
        await events.push_back("started")
        events[-1]           # "started"
        ```
    """

    __slots__ = ()
    _machine_type = VecMachine

    # -- local reads --------------------------------------------------------

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            return self._locked(lambda m: [copy_out(x) for x in list(m.items)[index]])
        item: T = copy_out(self._machine.items[index])
        return item

    def __len__(self) -> int:
        return len(self._machine.items)

    def __iter__(self) -> Iterator[T]:
        return iter(self._locked(lambda m: [copy_out(x) for x in m.items]))

    def __contains__(self, item: object) -> bool:
        return self._locked(lambda m: item in m.items)

    def index(self, item: T, start: int = 0, stop: int | None = None) -> int:
        """The first index of ``item`` (`ValueError` if absent), as ``list.index``."""

        def find(m: VecMachine) -> int:
            items = list(m.items)
            return items.index(item, start, len(items) if stop is None else stop)

        return self._locked(find)

    # -- writes -------------------------------------------------------------

    def push_back(self, item: T, *, request_id: bytes | None = None) -> Coroutine[Any, Any, int]:
        """Appends ``item``; the version."""
        return self._execute([_PUSH_BACK, item], request_id)

    def push_front(self, item: T, *, request_id: bytes | None = None) -> Coroutine[Any, Any, int]:
        """Puts ``item`` first; the version."""
        return self._execute([_PUSH_FRONT, item], request_id)

    async def pop_back(self, *, request_id: bytes | None = None) -> T | None:
        """Removes and returns the last item (None when empty), exactly once."""
        item: T | None = await self._call([_POP_BACK], request_id)
        return item

    async def pop_front(self, *, request_id: bytes | None = None) -> T | None:
        """Removes and returns the first item (None when empty), exactly once."""
        item: T | None = await self._call([_POP_FRONT], request_id)
        return item

    def insert(
        self, index: int, item: T, *, request_id: bytes | None = None
    ) -> Coroutine[Any, Any, int]:
        """Inserts ``item`` before ``index``, as ``list.insert``; the version."""
        return self._execute([_INSERT, _index(index, "index"), item], request_id)

    def remove(self, index: int, *, request_id: bytes | None = None) -> Coroutine[Any, Any, int]:
        """Removes the item at ``index`` (nothing when out of range: unlike
        ``list.remove``, this takes an index, not a value); the version."""
        return self._execute([_REMOVE, _index(index, "index")], request_id)

    def extend(
        self, items: Iterable[T], *, request_id: bytes | None = None
    ) -> Coroutine[Any, Any, int]:
        """Appends every item, in one command; the version."""
        return self._execute([_EXTEND, list(items)], request_id)

    def truncate(self, length: int, *, request_id: bytes | None = None) -> Coroutine[Any, Any, int]:
        """Keeps the first ``length`` items; the version."""
        length = _index(length, "length")
        if length < 0:
            raise ValueError(f"length must not be negative, not {length}")
        return self._execute([_TRUNCATE, length], request_id)

    def clear(self, *, request_id: bytes | None = None) -> Coroutine[Any, Any, int]:
        """Removes every item; the version."""
        return self._execute([_CLEAR], request_id)
