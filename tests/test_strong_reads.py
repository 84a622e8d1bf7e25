"""Strong reads made in one turn of the event loop share one read index
(`mosaik._reads`): one native read serves them all, a read made after it
started gets a new one, each caller can be cancelled alone, and a failure
reaches every caller. The native side is replaced by futures the test
settles; `test_queries.py` covers strong reads on real groups."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conftest import bounded
from mosaik import _reads


class FakeNative:
    """Stands in for `NativeGroup.read` and the loop's bridge: every read is
    a future the test settles."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reads: list[asyncio.Future[int | None]] = []
        monkeypatch.setattr(_reads._bridge, "of", lambda _loop: self)

    @staticmethod
    def then(pending: asyncio.Future[int | None], callback: Any) -> None:
        def done(future: asyncio.Future[int | None]) -> None:
            error = future.exception()
            callback(error is None, future.result() if error is None else error)

        pending.add_done_callback(done)

    def read(self) -> Any:
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self.reads.append(future)
        return future


async def test_reads_of_one_loop_turn_share_one_native_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    native = FakeNative(monkeypatch)
    reads = _reads.Reads(native.read)
    first = [reads.index() for _ in range(5)]
    assert native.reads == []  # asked for only once the loop gets to it
    await asyncio.sleep(0)
    assert len(native.reads) == 1
    later = reads.index()  # made after that read was asked for: a new one
    await asyncio.sleep(0)
    assert len(native.reads) == 2
    native.reads[0].set_result(41)
    assert await bounded(asyncio.gather(*first)) == [41] * 5
    assert not later.done()
    native.reads[1].set_result(42)
    assert await bounded(later) == 42


async def test_a_cancelled_reader_leaves_the_others_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    native = FakeNative(monkeypatch)
    reads = _reads.Reads(native.read)
    waiting = [asyncio.ensure_future(reads.index()) for _ in range(3)]
    await asyncio.sleep(0)
    waiting[1].cancel()
    await asyncio.sleep(0)
    assert not native.reads[0].cancelled()
    native.reads[0].set_result(None)  # no leader confirmed one in time
    assert await bounded(waiting[0]) is None
    assert await bounded(waiting[2]) is None
    assert waiting[1].cancelled()


async def test_a_failed_read_fails_every_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    native = FakeNative(monkeypatch)
    reads = _reads.Reads(native.read)
    waiting = [reads.index() for _ in range(3)]
    await asyncio.sleep(0)
    native.reads[0].set_exception(RuntimeError("the group was left"))
    for waiter in waiting:
        with pytest.raises(RuntimeError, match="the group was left"):
            await bounded(waiter)


async def test_a_read_that_cannot_start_fails_every_reader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    FakeNative(monkeypatch)

    def refused() -> Any:
        raise RuntimeError("the network is closed")

    reads = _reads.Reads(refused)
    waiting = [reads.index() for _ in range(2)]
    for waiter in waiting:
        with pytest.raises(RuntimeError, match="the network is closed"):
            await bounded(waiter)
