"""`call` and `call_many` return what this node's `apply` returned; an
`apply` that raises reaches the caller as `ApplyError` while the command
stays committed and applied everywhere."""

from __future__ import annotations

from typing import Any

import pytest
from replication_helpers import fast, followers_of, leader_of

import mosaik
from conftest import bounded, eventually, networks


class Jobs(mosaik.StateMachine):
    """A job queue: ``{"push": x}`` returns the queue's length, ``{"pop":
    True}`` returns the oldest job (``None`` when empty), ``{"boom": n}``
    raises after counting it, so every node's state still agrees."""

    def __init__(self) -> None:
        self.queue: list[Any] = []
        self.booms = 0

    def signature(self) -> str:
        return "jobs_v1"

    def apply(self, command: Any, ctx: mosaik.ApplyContext) -> Any:
        if "push" in command:
            self.queue.append(command["push"])
            return len(self.queue)
        if "boom" in command:
            self.booms += 1
            raise KeyError(command["boom"])
        return self.queue.pop(0) if self.queue else None

    def query(self, query: Any) -> Any:
        return {"queue": self.queue, "booms": self.booms}


class BatchJobs(Jobs):
    """`Jobs` applied a batch at a time; ``{"wrong": True}`` makes the batch
    return one value too many."""

    def apply_batch(self, commands: list[Any], ctx: mosaik.ApplyContext) -> Any:
        if any("wrong" in c for c in commands):
            return [None] * (len(commands) + 1)
        return [self.apply(c, ctx) for c in commands]


async def jobs_group(
    nets: list[mosaik.Network], machine: type[Jobs] = Jobs
) -> list[mosaik.Group[Jobs]]:
    key = mosaik.GroupKey.generate()
    groups = [
        n.groups().with_key(key).with_state_machine(machine()).with_consensus_config(fast()).join()
        for n in nets
    ]
    await eventually(lambda: all(len(g.bonds()) == len(nets) - 1 for g in groups), 5.0, "mesh")
    await eventually(
        lambda: len({g.leader() for g in groups}) == 1 and groups[0].leader() is not None,
        5.0,
        "one leader",
    )
    return groups


async def test_call_returns_what_apply_returned_on_the_node_that_called() -> None:
    async with networks(3, chain=True) as nets:
        groups = await jobs_group(nets)
        leader, follower = leader_of(groups), followers_of(groups)[0]
        assert await bounded(leader.call({"push": "a"})) == 1
        assert await bounded(follower.call({"push": "b"})) == 2
        assert await bounded(follower.call({"pop": True})) == "a"
        assert await bounded(leader.call({"pop": True})) == "b"
        assert await bounded(leader.call({"pop": True})) is None


@pytest.mark.parametrize("machine", [Jobs, BatchJobs])
async def test_call_many_returns_one_value_per_command_in_order(machine: type[Jobs]) -> None:
    async with networks(1) as nets:
        (group,) = await jobs_group(nets, machine)
        pushes = [{"push": i} for i in range(5)]
        assert await bounded(group.call_many(pushes)) == [1, 2, 3, 4, 5]
        pops = await bounded(group.call_many([{"pop": True}] * 6))
        assert pops == [0, 1, 2, 3, 4, None]


async def test_an_apply_that_raises_reaches_the_caller_and_the_command_stays_applied() -> None:
    async with networks(3, chain=True) as nets:
        groups = await jobs_group(nets)
        follower = followers_of(groups)[0]
        with pytest.raises(mosaik.ApplyError) as raised:
            await bounded(follower.call({"boom": "x"}))
        error = raised.value
        assert isinstance(error, mosaik.CommandError)
        assert isinstance(error.__cause__, KeyError) and error.__cause__.args == ("x",)
        assert follower.committed() >= error.index
        # `execute` of the same kind of command does not raise: it committed.
        index = await bounded(follower.execute({"boom": "y"}))
        assert index > error.index
        await eventually(
            lambda: all(g.machine.booms == 2 for g in groups), 5.0, "both applied everywhere"
        )


async def test_a_batch_that_raises_or_returns_the_wrong_count_raises_apply_error() -> None:
    async with networks(1) as nets:
        (group,) = await jobs_group(nets, BatchJobs)
        with pytest.raises(mosaik.ApplyError) as raised:
            await bounded(group.call_many([{"push": 1}, {"boom": "z"}]))
        assert isinstance(raised.value.__cause__, KeyError)
        with pytest.raises(mosaik.ApplyError) as wrong:
            await bounded(group.call_many([{"push": 1}, {"wrong": True}]))
        assert isinstance(wrong.value.__cause__, TypeError)


async def test_results_are_kept_only_while_a_call_waits() -> None:
    async with networks(1) as nets:
        (group,) = await jobs_group(nets)
        for i in range(20):
            await bounded(group.execute({"push": i}))
        values = await bounded(group.call_many([{"pop": True}] * 3))
        assert values == [0, 1, 2]
        replica = group._replica
        assert not replica.results.keeping
        assert replica.results.values == {}, "nothing kept once no call waits"
