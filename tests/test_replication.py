"""Replicated Python state machines end to end over QUIC on 127.0.0.1:
commands, queries, status, catch-up and failover."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from machines import Counter
from replication_helpers import (
    FAST,
    counter_group,
    fast,
    followers_of,
    leader_of,
)

import mosaik
from conftest import bounded, eventually, networks


async def test_lone_node_elects_itself_and_later_joiners_catch_up() -> None:
    key = mosaik.GroupKey.generate()
    # At min_quorum 1 a joiner that has not bonded when its first election
    # timer fires leads itself, and the two sides reconcile by term: the
    # bootstrap delay gives joiners time to bond even on a loaded machine.
    config = fast(bootstrap_delay=1.5)
    async with networks(3, chain=True) as (a, b, c):
        ga = (
            a.groups()
            .with_key(key)
            .with_state_machine(Counter())
            .with_consensus_config(config)
            .join()
        )
        assert ga.leader() is None
        assert await bounded(ga.when().leader_elected()) == a.local.id
        assert ga.is_leader()
        first = await bounded(ga.execute({"add": 5}))
        assert ga.committed() >= first and ga.machine.value == 5
        gb = (
            b.groups()
            .with_key(key)
            .with_state_machine(Counter())
            .with_consensus_config(config)
            .join()
        )
        assert await bounded(gb.when().leader_is(a.local.id)) == a.local.id
        await bounded(gb.when().committed().reaches(first))
        assert gb.machine.value == 5
        gc = (
            c.groups()
            .with_key(key)
            .with_state_machine(Counter())
            .with_consensus_config(config)
            .join()
        )
        rng = await bounded(gb.execute_many([{"add": 1}] * 10))
        await bounded(gc.when().committed().reaches(rng))
        assert gc.machine.value == ga.machine.value == gb.machine.value == 15


class Batch7(Counter):
    batch_size = 7

    def state_sync(self) -> mosaik.LogReplaySync:
        return mosaik.LogReplaySync(batch_size=self.batch_size, fetch_timeout=2.0)


@pytest.mark.parametrize("batch_size", [7, 20, 100, 1000])
async def test_late_joiner_catches_up_400_entries(batch_size: int) -> None:
    machine = type(f"Batch{batch_size}", (Batch7,), {"batch_size": batch_size})
    key = mosaik.GroupKey.generate()
    async with counter_group(2, key, machine=machine) as (nets, groups):
        rng = await bounded(leader_of(groups).execute_many([{"add": 1}] * 400))
        async with networks(1) as (late,):
            await bounded(late.sync_with(nets[0].local.addr))
            joined = (
                late.groups()
                .with_key(key)
                .with_state_machine(machine())
                .with_consensus_config(fast())
                .join()
            )
            for g in [joined, *groups]:
                await bounded(g.when().committed().reaches(rng), 20.0)
            assert joined.machine.value == 400
            assert [g.machine.value for g in groups] == [400, 400]


async def test_commands_from_leader_and_followers_get_their_indices() -> None:
    async with counter_group(3) as (_, groups):
        leader, follower = leader_of(groups), followers_of(groups)[0]
        i1 = await bounded(leader.execute({"add": 1}))
        i2 = await bounded(follower.execute({"add": 2}))
        assert i2 > i1
        rng = await bounded(follower.execute_many([{"add": 3}, {"add": 4}]))
        assert len(rng) == 2 and rng[0] > i2
        f1 = await bounded(follower.feed({"add": 5}))
        frng = await bounded(leader.feed_many([{"add": 6}, {"add": 7}]))
        assert f1 > rng[-1] and frng[0] > f1 and len(frng) == 2
        for g in groups:
            await bounded(g.when().committed().reaches(frng))
        assert {g.machine.value for g in groups} == {28}
        # read your writes: execute returns after the local apply
        i3 = await bounded(follower.execute({"add": 10}))
        assert follower.machine.value == 38 and follower.committed() >= i3


async def test_fifty_concurrent_executes_get_distinct_indices() -> None:
    async with counter_group(3) as (_, groups):
        tasks = [groups[i % 3].execute({"add": i}) for i in range(50)]
        indices = await bounded(asyncio.gather(*tasks), 20.0)
        assert len(set(indices)) == 50
        last = max(indices)
        for g in groups:
            await bounded(g.when().committed().reaches(last))
        assert {g.machine.value for g in groups} == {sum(range(50))}


async def test_weak_and_strong_queries_agree_and_strong_on_a_follower_sees_the_leader() -> None:
    async with counter_group(3) as (_, groups):
        leader, follower = leader_of(groups), followers_of(groups)[0]
        rng = await bounded(leader.execute_many([{"add": 2}] * 5))
        await bounded(follower.when().committed().reaches(rng))
        weak = await bounded(follower.query(None, mosaik.Consistency.WEAK))
        strong = await bounded(follower.query(None, mosaik.Consistency.STRONG))
        assert weak.result == strong.result == 10
        assert strong.at_position >= rng[-1] and strong.state_position() == strong.at_position
        # a strong read on a follower waits for what the leader has committed
        last = await bounded(leader.execute({"add": 1}))
        strong = await bounded(followers_of(groups)[1].query(None, mosaik.Consistency.STRONG))
        assert strong.at_position >= last and strong.result == 11


async def test_when_watchers_resolve_as_documented() -> None:
    async with counter_group(2) as (_, groups):
        g = groups[0]
        assert await bounded(g.when().leader_elected()) == g.leader()
        await bounded(g.when().online())
        first = await bounded(g.execute({"add": 1}))
        await bounded(g.when().committed().reaches(first))
        base, position = g.committed(), g.log_position()
        advanced = g.when().committed().advanced()
        changed = g.when().log().changed()
        index = await bounded(g.execute({"add": 1}))
        assert base < await bounded(advanced) <= index
        assert position < await bounded(changed)
        assert g.log_position().index >= index
        assert isinstance(g.log_position(), mosaik.Cursor)
        if g.is_leader():
            await bounded(g.when().is_leader())
        else:
            await bounded(g.when().is_follower())
        pending = asyncio.ensure_future(asyncio.wait_for(g.when().leader_changed(), 10))
        await asyncio.sleep(0.05)
        assert not pending.done()
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending


async def test_leader_network_closed_survivors_agree_on_a_new_leader() -> None:
    async with counter_group(3) as (nets, groups):
        old = leader_of(groups)
        survivors = [g for g in groups if g is not old]
        changes = [asyncio.ensure_future(g.when().leader_changed()) for g in survivors]
        await bounded(old.execute({"add": 1}))
        await bounded(nets[groups.index(old)].close())
        bound = FAST["election_timeout"] + FAST["election_timeout_jitter"] + 1.0
        new_leaders = await bounded(asyncio.gather(*changes), bound)
        assert new_leaders[0] == new_leaders[1]
        index = await bounded(survivors[0].execute({"add": 1}))
        await bounded(survivors[1].when().committed().reaches(index))
        assert {g.machine.value for g in survivors} == {2}


async def test_follower_without_a_leader_gets_command_offline_in_time() -> None:
    key = mosaik.GroupKey.generate()
    consensus = fast(min_quorum=2)
    async with counter_group(2, key, consensus) as (nets, groups):
        follower = followers_of(groups)[0]
        await bounded(nets[groups.index(leader_of(groups))].close())
        loop = asyncio.get_running_loop()
        start = loop.time()
        commands = [{"add": 1}, {"add": 2}]
        with pytest.raises(mosaik.CommandOffline) as info:
            await bounded(follower.execute_many(commands), 10.0)
        assert info.value.commands == commands
        assert loop.time() - start <= FAST["forward_timeout"] + 0.5
        with pytest.raises(mosaik.QueryOffline) as qinfo:
            await bounded(follower.query("q", mosaik.Consistency.STRONG), 10.0)
        assert qinfo.value.query == "q"


class Observer(Counter):
    def leadership_preference(self) -> mosaik.LeadershipPreference:
        return mosaik.LeadershipPreference.OBSERVER


class Reluctant(Counter):
    def leadership_preference(self) -> mosaik.LeadershipPreference:
        return mosaik.LeadershipPreference.reluctant(3)


async def test_a_group_of_only_observers_has_no_leader() -> None:
    key = mosaik.GroupKey.generate()
    async with networks(2, chain=True) as nets:
        groups = [
            n.groups()
            .with_key(key)
            .with_state_machine(Observer())
            .with_consensus_config(fast())
            .join()
            for n in nets
        ]
        await eventually(lambda: all(len(g.bonds()) == 1 for g in groups), 5.0, "mesh")
        await asyncio.sleep(1.0)
        assert [g.leader() for g in groups] == [None, None]
        with pytest.raises(mosaik.CommandOffline):
            await bounded(groups[0].execute({"add": 1}))


async def test_an_observer_replicates_but_never_leads() -> None:
    key = mosaik.GroupKey.generate()
    async with networks(2, chain=True) as (a, b):
        observer = (
            a.groups()
            .with_key(key)
            .with_state_machine(Observer())
            .with_consensus_config(fast())
            .join()
        )
        (
            b.groups()
            .with_key(key)
            .with_state_machine(Counter())
            .with_consensus_config(fast())
            .join()
        )
        assert await bounded(observer.when().leader_elected()) == b.local.id
        index = await bounded(observer.execute({"add": 3}))
        await bounded(observer.when().committed().reaches(index))
        assert observer.machine.value == 3 and not observer.is_leader()


@pytest.mark.parametrize("run", range(10))
async def test_reluctant_node_loses_the_first_election(run: int) -> None:
    key = mosaik.GroupKey.generate()
    async with networks(2, chain=True) as (a, b):
        reluctant = (
            a.groups()
            .with_key(key)
            .with_state_machine(Reluctant())
            .with_consensus_config(fast())
            .join()
        )
        normal = (
            b.groups()
            .with_key(key)
            .with_state_machine(Counter())
            .with_consensus_config(fast())
            .join()
        )
        leader = await bounded(reluctant.when().leader_elected())
        assert leader == b.local.id, f"run {run}: the reluctant node won"
        assert normal.is_leader()


async def test_isolated_leaders_merge_into_one_group_with_the_surviving_log() -> None:
    key = mosaik.GroupKey.generate()
    async with networks(3) as nets:
        groups = [
            n.groups()
            .with_key(key)
            .with_state_machine(Counter())
            .with_consensus_config(fast())
            .join()
            for n in nets
        ]
        for g, add in zip(groups, (1, 10, 100), strict=True):
            assert await bounded(g.when().leader_elected()) is not None
            for _ in range(3):
                await bounded(g.execute({"add": add}))
        assert [g.machine.value for g in groups] == [3, 30, 300]
        await bounded(nets[1].sync_with(nets[0].local.addr))
        await bounded(nets[2].sync_with(nets[1].local.addr))
        await eventually(
            lambda: len({g.leader() for g in groups}) == 1 and groups[0].leader() is not None,
            10.0,
            "one leader",
        )
        index = await bounded(groups[0].execute({"add": 1000}), 10.0)
        for g in groups:
            await bounded(g.when().committed().reaches(index), 10.0)
        values = {g.machine.value for g in groups}
        assert len(values) == 1
        assert values.pop() in {1003, 1030, 1300}


async def test_plain_join_runs_the_noop_machine() -> None:
    key = mosaik.GroupKey.generate()
    async with networks(2, chain=True) as nets:
        groups = [n.groups().with_key(key).with_consensus_config(fast()).join() for n in nets]
        assert isinstance(groups[0].machine, mosaik.NoOp)
        index = await bounded(groups[1].execute(None))
        await bounded(groups[0].when().committed().reaches(index))
        assert (await bounded(groups[0].query(None, mosaik.Consistency.STRONG))).result is None


# -- bad input -------------------------------------------------------------


async def test_unencodable_command_raises_codec_error_and_sends_nothing() -> None:
    async with counter_group(2) as (_, groups):
        g = leader_of(groups)
        with pytest.raises(mosaik.CodecError):
            await bounded(g.execute({"add": object()}))
        with pytest.raises(TypeError):
            await bounded(g.execute_many([{"add": 1}, {1, 2}]))
        with pytest.raises(mosaik.CodecError):
            await bounded(g.query(object()))
        # Only commands reach the machine (a leader change under load may
        # commit a marker entry meanwhile, which applies nothing).
        await bounded(g.execute({"add": 1}))
        assert g.machine.value == 1
        assert len(g.machine.applied) == 1


async def test_empty_batches_raise_no_commands() -> None:
    async with counter_group(1) as (_, (g,)):
        with pytest.raises(mosaik.NoCommands):
            await bounded(g.execute_many([]))
        with pytest.raises(mosaik.NoCommands):
            await bounded(g.feed_many([]))


async def test_calls_after_leave_or_close_raise_group_terminated() -> None:
    async with counter_group(1) as (nets, (g,)):
        await bounded(g.leave())
        for call in (g.execute({"add": 1}), g.feed({"add": 1}), g.query(None)):
            with pytest.raises(mosaik.GroupTerminated):
                await bounded(call)
        assert isinstance(mosaik.GroupTerminated("x"), mosaik.QueryError)
    async with counter_group(1) as (nets, (g,)):
        await bounded(nets[0].close())
        with pytest.raises(mosaik.GroupTerminated):
            await bounded(g.execute({"add": 1}))
        with pytest.raises(mosaik.GroupTerminated):
            await bounded(g.query(None, mosaik.Consistency.STRONG))


async def test_calls_waiting_in_the_worker_end_when_the_group_is_left() -> None:
    # The worker answers a call by calling it back; a worker that stops
    # first drops the callback, and that must still end the call.
    async with counter_group(2, consensus=fast(min_quorum=2)) as (_, groups):
        leader = leader_of(groups)
        other = next(g for g in groups if g is not leader)
        await bounded(other.leave())  # the leader can no longer commit
        waiting = [
            asyncio.ensure_future(leader.execute({"add": 1})),
            asyncio.ensure_future(leader.query(None, mosaik.Consistency.STRONG)),
        ]
        await asyncio.sleep(0.05)  # both reach the consensus worker
        await bounded(leader.leave())
        outcomes = await bounded(asyncio.gather(*waiting, return_exceptions=True))
        # GroupTerminated unless the leader stepped down first and answered.
        assert isinstance(outcomes[0], (mosaik.GroupTerminated, mosaik.CommandUnknown))
        assert isinstance(outcomes[1], (mosaik.GroupTerminated, mosaik.QueryOffline))


class Picky(Counter):
    def signature(self) -> str:
        return "picky_v1"

    def apply(self, command: Any, ctx: mosaik.ApplyContext) -> None:
        if command["add"] < 0:
            raise ValueError("negative")
        super().apply(command, ctx)


async def test_apply_raising_is_logged_and_the_group_keeps_committing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="mosaik")
    async with counter_group(2, machine=Picky) as (_, groups):
        g = leader_of(groups)
        bad = await bounded(g.execute({"add": -1}))
        await bounded(g.execute({"add": 2}))
        for other in groups:
            await bounded(other.when().committed().reaches(bad + 1))
        assert {x.machine.value for x in groups} == {2}
        assert any(f"index {bad}" in r.getMessage() for r in caplog.records)


async def test_query_handler_exception_reaches_the_caller() -> None:
    async with counter_group(1) as (_, (g,)):
        with pytest.raises(RuntimeError, match="query handler failed"):
            await bounded(g.query("boom"))
        assert (await bounded(g.query(None))).result == 0


async def test_cancelled_execute_leaves_the_group_usable() -> None:
    async with counter_group(2) as (_, groups):
        g = followers_of(groups)[0]
        task = asyncio.ensure_future(g.execute({"add": 1}))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        index = await bounded(g.execute({"add": 1}))
        assert index > 0


def test_default_codec_keeps_types() -> None:
    value = {
        "none": None,
        "bool": True,
        "int": -(2**63),
        "big": 2**63 - 1,
        "float": 1.5,
        "str": "é",
        "bytes": b"\x00\xff",
        "list": [1, (2, 3)],
        "tuple": (1, [2], (3,)),
        (1, 2): "tuple key",
    }
    codec = mosaik.codec.MSGPACK
    assert codec.decode(codec.encode(value)) == value
    decoded = codec.decode(codec.encode(value))
    assert type(decoded["tuple"]) is tuple and type(decoded["list"]) is list
    assert type(decoded["tuple"][1]) is list and type(decoded["bool"]) is bool
    for bad in (object(), {1, 2}, 2**64, 1 + 2j):
        with pytest.raises(mosaik.CodecError):
            codec.encode(bad)
    with pytest.raises(mosaik.CodecError):
        codec.decode(b"\xc1")


class JsonCodec:
    def encode(self, obj: Any) -> bytes:
        import json

        return json.dumps(obj).encode()

    def decode(self, data: bytes) -> Any:
        import json

        return json.loads(data)


class JsonCounter(Counter):
    codec = JsonCodec()


async def test_custom_codec_is_used_for_commands() -> None:
    async with counter_group(2, machine=JsonCounter) as (_, groups):
        await bounded(followers_of(groups)[0].execute({"add": 4}))
        # The call returns once applied on the follower that made it; the
        # leader's own apply is only certain after a barrier there.
        leader = leader_of(groups)
        await bounded(leader.barrier())
        assert leader.machine.value == 4


class PlainCounter:
    """A state machine that does not subclass `mosaik.StateMachine`."""

    def __init__(self) -> None:
        self.value = 0

    def signature(self) -> str:
        return "plain_counter_v1"

    def apply(self, command: Any, ctx: mosaik.ApplyContext) -> None:
        self.value += command["add"]

    def query(self, query: Any) -> int:
        return self.value


async def test_a_machine_that_is_not_a_state_machine_subclass_applies_commands() -> None:
    key = mosaik.GroupKey.generate()
    async with networks(1) as (net,):
        group = (
            net.groups()
            .with_key(key)
            .with_state_machine(PlainCounter())
            .with_consensus_config(fast())
            .join()
        )
        await bounded(group.when().online())
        await bounded(group.execute({"add": 3}))
        assert group.machine.value == 3


def test_cursors_order_by_term_then_index() -> None:
    assert mosaik.Cursor(1, 9) < mosaik.Cursor(2, 0) < mosaik.Cursor(2, 1)
    assert mosaik.Cursor(2, 1) == mosaik.Cursor(2, 1) != mosaik.Cursor(1, 2)
    assert len({mosaik.Cursor(1, 1), mosaik.Cursor(1, 1)}) == 1
    assert max(mosaik.Cursor(3, 1), mosaik.Cursor(2, 7)).term == 3
