"""Resolves asyncio futures from native operations, on the loop's thread.

`watch` is the way Python awaits a native `Pending`: every call site does
``await _bridge.watch(native_call(...))``. The proposal and read batchers,
which resolve their callers' futures themselves, use ``of(loop).then``
instead: their callback runs as the outcome is drained, one turn of the loop
sooner than a future's done-callback would. Each event loop gets one native
`Bridge`; the loop watches its socket and, when woken, drains finished
operations. Cancelling a watched future (or the task awaiting it) aborts
the native operation.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

from . import _native

T = TypeVar("T")

#: Called with ``(True, value)`` or ``(False, exception)``.
Then = Callable[[bool, Any], None]

_bridges: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopBridge] = (
    weakref.WeakKeyDictionary()
)


def resolver(future: asyncio.Future[Any]) -> Then:
    """The callback that sets ``future`` from an outcome, unless it is done
    (cancelled) already."""

    def resolve(ok: bool, value: Any) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    return resolve


class _LoopBridge:
    __slots__ = ("__weakref__", "_callbacks", "_loop", "_native")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Weak, so that the registry's value does not keep its key alive.
        self._loop = weakref.ref(loop)
        self._native = _native.Bridge()
        self._callbacks: dict[int, Then] = {}
        loop.add_reader(self._native.fileno(), self._drain)

    def then(self, pending: _native.Pending[Any], callback: Then) -> int:
        """Runs ``callback(True, value)`` or ``callback(False, exception)``
        on the loop once ``pending`` finishes (the operation runs to its end:
        no one cancels it); the operation's id."""
        if self._loop() is None:
            raise RuntimeError("the event loop is gone")
        op_id = self._native.watch(pending)
        if op_id is None:
            raise RuntimeError("this native operation was already awaited")
        self._callbacks[op_id] = callback
        return op_id

    def watch(self, pending: _native.Pending[T]) -> asyncio.Future[T]:
        loop = self._loop()
        if loop is None:
            raise RuntimeError("the event loop is gone")
        future: asyncio.Future[T] = loop.create_future()
        op_id = self.then(pending, resolver(future))

        def on_done(f: asyncio.Future[T]) -> None:
            if f.cancelled():
                self._callbacks.pop(op_id, None)
                pending.cancel()

        future.add_done_callback(on_done)
        return future

    def _drain(self) -> None:
        for op_id, ok, value in self._native.drain():
            callback = self._callbacks.pop(op_id, None)
            if callback is None:
                continue
            # One failing callback must not lose the rest of the outcomes.
            try:
                callback(ok, value)
            except Exception as exc:
                loop = self._loop()
                if loop is not None:
                    loop.call_exception_handler(
                        {"message": "a callback of a native operation failed", "exception": exc}
                    )


def of(loop: asyncio.AbstractEventLoop) -> _LoopBridge:
    """``loop``'s bridge, made on its first use (which can fail: it opens a
    socket pair and watches it), so that a caller can get it before it
    starts an operation whose outcome must not be lost."""
    bridge = _bridges.get(loop)
    if bridge is None:
        bridge = _bridges[loop] = _LoopBridge(loop)
    return bridge


def watch(pending: _native.Pending[T]) -> asyncio.Future[T]:
    """The asyncio future of ``pending`` on the running loop; cancelling it
    cancels the native operation. A `Pending` can be watched once."""
    return of(asyncio.get_running_loop()).watch(pending)
