"""Queries answer from a copy of the machine's state, and a query that meets
a long `apply` waits for it without stopping the event loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from replication_helpers import fast

import mosaik
from conftest import bounded, eventually, networks


class Shelf(mosaik.StateMachine):
    """A dict of names to lists; ``{"put": k, "v": x}`` appends x to k's list,
    ``{"hold": True}`` keeps the machine busy until ``release`` is set (10 s
    at most). Every query returns the live dict itself."""

    def __init__(self) -> None:
        self.items: dict[str, list[Any]] = {}
        self.holding = threading.Event()
        self.release = threading.Event()

    def signature(self) -> str:
        return "shelf_v1"

    def apply(self, command: Any, ctx: mosaik.ApplyContext) -> None:
        if "hold" in command:
            self.holding.set()
            self.release.wait(10.0)
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
        slow = asyncio.create_task(group.execute({"hold": True}))
        await eventually(group.machine.holding.is_set, 5.0, "the long apply started")
        query = asyncio.create_task(group.query("all"))
        ticks = 0
        while ticks < 20:
            # The loop runs while the query waits for the machine: a query
            # that blocked it would never let this task resume.
            await asyncio.sleep(0.005)
            ticks += 1
            assert not query.done(), "the query answered while the apply held the machine"
        group.machine.release.set()
        answer = await bounded(query)
        index = await bounded(slow)
        assert answer.result == {"a": [1]}
        assert answer.at_position >= index
        await group.leave()
