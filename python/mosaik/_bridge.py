"""Resolves asyncio futures from native operations, on the loop's thread.

`watch` is the one way Python awaits a native `Pending`: every call site
does ``await _bridge.watch(native_call(...))`` (or keeps the future, as the
proposal batcher does). Each event loop gets one native `Bridge`; the loop
watches its socket and, when woken, drains finished operations and sets
their futures. Cancelling a future (or the task awaiting it) aborts the
native operation.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any, TypeVar

from . import _native

T = TypeVar("T")

_bridges: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopBridge] = (
    weakref.WeakKeyDictionary()
)


class _LoopBridge:
    __slots__ = ("__weakref__", "_futures", "_loop", "_native")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Weak, so that the registry's value does not keep its key alive.
        self._loop = weakref.ref(loop)
        self._native = _native.Bridge()
        self._futures: dict[int, asyncio.Future[Any]] = {}
        loop.add_reader(self._native.fileno(), self._drain)

    def watch(self, pending: _native.Pending[T]) -> asyncio.Future[T]:
        loop = self._loop()
        if loop is None:
            raise RuntimeError("the event loop is gone")
        future: asyncio.Future[T] = loop.create_future()
        op_id = self._native.watch(pending)
        if op_id is None:
            raise RuntimeError("this native operation was already awaited")
        self._futures[op_id] = future

        def on_done(f: asyncio.Future[T]) -> None:
            if f.cancelled():
                self._futures.pop(op_id, None)
                pending.cancel()

        future.add_done_callback(on_done)
        return future

    def _drain(self) -> None:
        for op_id, ok, value in self._native.drain():
            future = self._futures.pop(op_id, None)
            if future is None or future.done():
                continue
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)


def watch(pending: _native.Pending[T]) -> asyncio.Future[T]:
    """The asyncio future of ``pending`` on the running loop; cancelling it
    cancels the native operation. A `Pending` can be watched once."""
    loop = asyncio.get_running_loop()
    bridge = _bridges.get(loop)
    if bridge is None:
        bridge = _bridges[loop] = _LoopBridge(loop)
    return bridge.watch(pending)
