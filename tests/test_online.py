"""`when().online()` / `offline()` as documented: online is the leader, or a
follower that knows a leader and is not catching up; a fresh node without a
leader, a candidate and a node whose leader is gone are offline."""

from __future__ import annotations

import asyncio

import pytest
from machines import Counter
from replication_helpers import fast

import mosaik
from conftest import bounded, networks


def join(net: mosaik.Network, key: mosaik.GroupKey) -> mosaik.Group[Counter]:
    builder = net.groups().with_key(key).with_state_machine(Counter())
    return builder.with_consensus_config(fast(min_quorum=2)).join()


async def test_a_fresh_node_without_a_leader_is_offline() -> None:
    async with networks(1) as (net,):
        alone = join(net, mosaik.GroupKey.generate())
        await bounded(alone.when().offline())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(alone.when().online(), 1.0)
        assert alone.leader() is None
        await alone.leave()


async def test_both_members_are_online_once_one_is_elected_and_offline_after_it_is_gone() -> None:
    key = mosaik.GroupKey.generate()
    async with networks(2, chain=True) as (a, b):
        first, second = join(a, key), join(b, key)
        leader = await bounded(first.when().leader_elected())
        await bounded(first.when().online())
        await bounded(second.when().online())
        survivor, lost = (second, a) if leader == a.local.id else (first, b)
        await lost.close()
        # Alone, the survivor (min_quorum 2) loses its leader or cannot
        # lead: an election it cannot win, so it is offline.
        await bounded(survivor.when().offline())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(survivor.when().online(), 1.0)
        await survivor.leave()
