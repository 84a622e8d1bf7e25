"""Queries answer from a copy of the machine's state, and a query that meets
a long `apply` waits for it without stopping the event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from replication_helpers import fast

import mosaik
from conftest import bounded, eventually, networks


class Shelf(mosaik.StateMachine):
    """A dict of names to lists; ``{"put": k, "v": x}`` appends x to k's list,
    ``{"hold": s}`` keeps the machine busy for s seconds. Every query returns
    the live dict itself."""

    def __init__(self) -> None:
        self.items: dict[str, list[Any]] = {}
        self.holding = threading.Event()

    def signature(self) -> str:
        return "shelf_v1"

    def apply(self, command: Any, ctx: mosaik.ApplyContext) -> None:
        if "hold" in command:
            self.holding.set()
            time.sleep(command["hold"])
            return
        self.items.setdefault(command["put"], []).append(command["v"])

    def query(self, query: Any) -> Any:
        return self.items


async def joined(net: mosaik.Network) -> mosaik.Group[Shelf]:
    builder = net.groups().with_key(mosaik.GroupKey.generate()).with_state_machine(Shelf())
    group = builder.with_consensus_config(fast()).join()
    await bounded(group.when().is_leader())
    return group


async def test_changing_a_query_answer_changes_nothing_in_the_machine() -> None:
    async with networks(1) as (net,):
        group = await joined(net)
        await bounded(group.execute({"put": "a", "v": 1}))
        answer = (await bounded(group.query("all"))).result
        answer["a"].append(2)
        answer["b"] = [3]
        assert group.machine.items == {"a": [1]}
        assert (await bounded(group.query("all"))).result == {"a": [1]}
        strong = await bounded(group.query("all", mosaik.Consistency.STRONG))
        strong.result.clear()
        assert group.machine.items == {"a": [1]}
        await group.leave()


async def test_a_weak_query_during_a_long_apply_leaves_the_event_loop_running() -> None:
    async with networks(1) as (net,):
        group = await joined(net)
        await bounded(group.execute({"put": "a", "v": 1}))
        slow = asyncio.create_task(group.execute({"hold": 1.0}))
        await eventually(group.machine.holding.is_set, 5.0, "the long apply started")

        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        answer = await bounded(group.query("all"))
        during = ticks
        ticker.cancel()
        index = await bounded(slow)
        # The query waited for the apply (it saw the state after it) while
        # the loop went on: a blocked loop would have ticked not once.
        assert answer.result == {"a": [1]}
        assert answer.at_position >= index
        assert during > 0
        await group.leave()
