"""The loop side of the native bridge (`mosaik._bridge`): outcomes drained
in one wake-up reach every waiter, whether a future or a callback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mosaik import _bridge


class Drained:
    """Stands in for the native `Bridge`: hands out the given outcomes once."""

    def __init__(self, outcomes: list[tuple[int, bool, Any]]) -> None:
        self.outcomes = outcomes

    def drain(self) -> list[tuple[int, bool, Any]]:
        outcomes, self.outcomes = self.outcomes, []
        return outcomes


async def test_a_failing_callback_loses_none_of_the_other_outcomes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    bridge = _bridge.of(loop)
    seen: list[Any] = []

    def failing(ok: bool, value: Any) -> None:
        raise RuntimeError("a broken callback")

    future: asyncio.Future[int] = loop.create_future()
    bridge._callbacks[1] = failing
    bridge._callbacks[2] = _bridge.resolver(future)  # as `watch` sets it
    bridge._callbacks[3] = lambda ok, value: seen.append((ok, value))
    monkeypatch.setattr(bridge, "_native", Drained([(1, True, 0), (2, True, 5), (3, False, "x")]))
    bridge._drain()
    assert future.result() == 5
    assert seen == [(False, "x")]
    assert [type(c["exception"]) for c in reported] == [RuntimeError]
