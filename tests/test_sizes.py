"""Command sizes: a command above `max_command_bytes` (or a batch above
`max_batch_bytes`) is refused at the call with `CommandTooLarge`, before
anything is sent; everything up to it replicates, forwards and catches up
whole, however far above the 4 MiB base frame limit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from replication_helpers import fast, followers_of, leader_of

import mosaik
from conftest import bounded, eventually, networks

MiB = 1 << 20


class Blobs(mosaik.StateMachine):
    """Keeps the size and first byte of every blob it applies."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    def signature(self) -> str:
        return "blobs_v1"

    def apply(self, command: Any, ctx: mosaik.ApplyContext) -> int:
        self.seen.append((len(command), command[0]))
        return len(command)

    def query(self, query: Any) -> int:
        return len(self.seen)


def join(net: mosaik.Network, key: mosaik.GroupKey, **overrides: Any) -> mosaik.Group[Blobs]:
    consensus = fast(**overrides)
    return (
        net.groups()
        .with_key(key)
        .with_state_machine(Blobs())
        .with_consensus_config(consensus)
        .join()
    )


async def test_a_command_above_max_command_bytes_is_refused_before_anything_is_sent() -> None:
    async with networks(1) as (net,):
        group = join(net, mosaik.GroupKey.generate(), max_command_bytes=1000)
        await bounded(group.when().is_leader())
        committed = group.committed()
        for call in (group.execute, group.feed, group.call):
            with pytest.raises(mosaik.CommandTooLarge) as raised:
                await call(b"x" * 1000)
            assert isinstance(raised.value, ValueError)
            assert (raised.value.limit, raised.value.size) == (1000, raised.value.size)
            assert raised.value.size > 1000
        with pytest.raises(mosaik.CommandTooLarge):
            await group.execute_many([b"ok", b"x" * 1000])
        assert group.committed() == committed, "nothing was proposed"
        assert await bounded(group.call(b"x" * 990)) == 990


async def test_a_batch_above_max_batch_bytes_is_refused_and_single_calls_split() -> None:
    async with networks(1) as (net,):
        group = join(net, mosaik.GroupKey.generate())
        await bounded(group.when().is_leader())
        budget = group.config().consensus.max_batch_bytes
        with pytest.raises(mosaik.CommandTooLarge, match="smaller batches"):
            await group.execute_many([b"a" * (10 * MiB), b"b" * (10 * MiB)])
        assert budget >= 16 * MiB
        # The same two as concurrent single calls go out as two proposals.
        sizes = await bounded(
            asyncio.gather(group.call(b"a" * (10 * MiB)), group.call(b"b" * (10 * MiB))),
            30.0,
        )
        assert sizes == [10 * MiB, 10 * MiB]


async def test_commands_of_15_mib_replicate_forward_and_catch_up_whole() -> None:
    key = mosaik.GroupKey.generate()
    async with networks(4, chain=True) as nets:
        groups = [join(n, key, min_quorum=2) for n in nets[:3]]
        await eventually(lambda: all(len(g.bonds()) == 2 for g in groups), 5.0, "mesh")
        await eventually(lambda: any(g.is_leader() for g in groups), 5.0, "a leader")
        leader, follower = leader_of(groups), followers_of(groups)[0]
        big = 15 * MiB
        assert await bounded(leader.call(bytes([1]) * big), 60.0) == big
        assert await bounded(follower.call(bytes([2]) * big), 60.0) == big
        for i in range(3, 8):
            await bounded(follower.execute(bytes([i]) * 100))
        with pytest.raises(mosaik.CommandTooLarge):
            await follower.execute(b"x" * (17 * MiB))
        expected = [(big, 1), (big, 2)] + [(100, i) for i in range(3, 8)]
        # A member that joins now catches up the large entries as well.
        late = join(nets[3], key, min_quorum=2)
        groups.append(late)
        await eventually(
            lambda: all(g.machine.seen == expected for g in groups), 60.0, "applied everywhere"
        )
