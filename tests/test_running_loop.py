"""`mosaik._running.running_loop`: a loop mosaik holds is taken for the
running one only when it runs on the calling thread; otherwise asyncio is
asked."""

from __future__ import annotations

import asyncio
import threading

import pytest

from mosaik._running import running_loop


async def test_the_known_loop_when_it_runs_on_this_thread() -> None:
    loop = asyncio.get_running_loop()
    assert running_loop(loop) is loop
    assert running_loop(None) is loop


async def test_a_loop_that_is_not_running_is_not_taken() -> None:
    idle = asyncio.new_event_loop()
    try:
        assert running_loop(idle) is asyncio.get_running_loop()
    finally:
        idle.close()


async def test_a_loop_running_on_another_thread_is_not_taken() -> None:
    here = asyncio.get_running_loop()
    seen: list[asyncio.AbstractEventLoop] = []

    async def there() -> None:
        seen.append(running_loop(here))
        seen.append(asyncio.get_running_loop())

    thread = threading.Thread(target=asyncio.run, args=(there(),))
    thread.start()
    await asyncio.wait_for(asyncio.to_thread(thread.join), 10)
    assert seen[0] is seen[1] and seen[0] is not here


def test_without_a_running_loop_it_raises() -> None:
    closed = asyncio.new_event_loop()
    closed.close()
    with pytest.raises(RuntimeError):
        running_loop(closed)
