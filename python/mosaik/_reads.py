"""Coalescing strong reads.

Every strong query and barrier made while the event loop runs one iteration
shares one read index. The native read starts when the loop gets to it,
after all of them were made, so the index it confirms was asked for after
each of them began, which is all that linearizability needs of it. One
native operation and one leader confirmation then serve the iteration's
reads instead of one each. Each caller awaits a future of its own,
resolved with the others': cancelling one caller leaves the others
waiting, and the shared read runs to its end even when every caller was
cancelled (it ends by the group's ``query_timeout`` at the latest).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from . import _bridge, _native
from ._running import running_loop

Read = Callable[[], "_native.Pending[int | None]"]


class Reads:
    """The shared read index of the strong reads made in one loop iteration."""

    __slots__ = ("_batch", "_read")

    def __init__(self, read: Read) -> None:
        self._read = read
        # The loop and waiters of the open batch, as one value: a group used
        # from loops on two threads never mixes their waiters.
        self._batch: tuple[asyncio.AbstractEventLoop, list[asyncio.Future[int | None]]] | None
        self._batch = None

    def index(self) -> asyncio.Future[int | None]:
        """A read index asked for after this call, applied here: ``None``
        when no leader confirmed one in time."""
        batch = self._batch
        loop = running_loop(None if batch is None else batch[0])
        if batch is None or batch[0] is not loop:
            batch = self._batch = (loop, [])
            loop.call_soon(self._start, batch)
        waiter: asyncio.Future[int | None] = loop.create_future()
        batch[1].append(waiter)
        return waiter

    def _start(
        self, batch: tuple[asyncio.AbstractEventLoop, list[asyncio.Future[int | None]]]
    ) -> None:
        if self._batch is batch:
            self._batch = None
        loop, waiters = batch
        try:
            # The bridge first: once started, the outcome must reach it.
            bridge = _bridge.of(loop)
            pending = self._read()
        except Exception as exc:
            settle(waiters, None, exc)
            return

        def done(ok: bool, outcome: Any) -> None:
            if ok:
                settle(waiters, outcome, None)
            else:
                settle(waiters, None, outcome)

        bridge.then(pending, done)


def settle(
    waiters: list[asyncio.Future[int | None]], index: int | None, error: BaseException | None
) -> None:
    """Resolves every waiter still waiting with ``index``, or fails it with
    ``error``."""
    for waiter in waiters:
        if waiter.done():
            continue
        if error is not None:
            waiter.set_exception(error)
        else:
            waiter.set_result(index)
