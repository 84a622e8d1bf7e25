"""`Queue[T]`: a replicated FIFO queue whose items are taken exactly once."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from ._base import Collection, DequeMachine, copy_out

T = TypeVar("T")

_PUT, _PUT_BOUNDED, _GET = range(3)


class QueueMachine(DequeMachine):
    """A deque; snapshots as one list."""

    kind = "queue"

    def _put(self, item: Any) -> bool:
        self.items.append(item)
        return True

    def _put_bounded(self, item: Any, maxsize: int) -> bool:
        if len(self.items) >= maxsize:
            return False
        self.items.append(item)
        return True

    def _get(self) -> Any:
        return self.items.popleft() if self.items else None

    OPS = (_put, _put_bounded, _get)


class Queue(Collection, Generic[T]):
    """A replicated FIFO queue. `get` hands each item to one caller only,
    even when a caller retries after `mosaik.CommandUnknown` with the
    error's ``request_id``.

    Example:
        ```python
        work = Queue[str].writer(net, "work")
        await work.put("resize:42.png")     # True
        await work.get()                    # "resize:42.png", to this caller only
        ```
    """

    __slots__ = ()
    _machine_type = QueueMachine

    def __len__(self) -> int:
        return len(self._machine.items)

    def peek(self) -> T | None:
        """The next item here without taking it (None when empty)."""
        items = self._machine.items
        try:
            item: T = copy_out(items[0])
        except IndexError:
            return None
        return item

    async def put(
        self, item: T, maxsize: int | None = None, *, request_id: bytes | None = None
    ) -> bool:
        """Appends ``item``; with ``maxsize``, only if the queue holds fewer
        items than that when the command applies. Whether it was added."""
        if item is None:
            raise ValueError("a queue item must not be None (get() returns None for empty)")
        if maxsize is None:
            await self._execute([_PUT, item], request_id)
            return True
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ValueError(f"maxsize must be a positive int or None, not {maxsize!r}")
        added: bool = await self._call([_PUT_BOUNDED, item, maxsize], request_id)
        return added

    async def get(self, *, request_id: bytes | None = None) -> T | None:
        """Takes the first item (None when empty), exactly once."""
        item: T | None = await self._call([_GET], request_id)
        return item
