"""Exactly once: a command whose `request_id` the group applied within the
last `dedupe_window` entries is not applied again, and the call returns the
first one's index and result: on the same node, on another member after a
failover, and after a restart from a snapshot."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from replication_helpers import fast, followers_of, leader_of

import mosaik
from conftest import bounded, eventually, networks
from mosaik import _bridge
from mosaik._proposals import Proposals


class Tally(mosaik.StateMachine):
    """Adds ``command`` (an int) to a total and returns the new total;
    snapshots every 10 entries."""

    snapshot_every = 10

    def __init__(self) -> None:
        self.total = 0
        self.applied = 0
        self.restored = False

    def signature(self) -> str:
        return "tally_v1"

    def apply(self, command: Any, ctx: mosaik.ApplyContext) -> int:
        self.total += command
        self.applied += 1
        return self.total

    def query(self, query: Any) -> int:
        return self.total

    def snapshot(self) -> bytes:
        return f"{self.total} {self.applied}".encode()

    def restore(self, data: bytes) -> None:
        total, applied = data.split()
        self.total, self.applied = int(total), int(applied)
        self.restored = True


def snapshots(path: Path) -> list[Path]:
    return sorted(path.glob("snapshot-*.snap"))


def join(
    net: mosaik.Network,
    key: mosaik.GroupKey,
    consensus: mosaik.ConsensusConfig | None = None,
    storage: mosaik.DiskLogStore | None = None,
) -> mosaik.Group[Tally]:
    builder = net.groups().with_key(key).with_state_machine(Tally())
    builder = builder.with_consensus_config(consensus or fast())
    return (builder.with_log_storage(storage) if storage else builder).join()


async def lone(net: mosaik.Network, **kwargs: Any) -> mosaik.Group[Tally]:
    group = join(net, mosaik.GroupKey.generate(), **kwargs)
    await bounded(group.when().is_leader())
    return group


async def test_a_repeated_request_id_applies_once_and_answers_as_the_first_did() -> None:
    async with networks(1) as (net,):
        group = await lone(net)
        first = await bounded(group.execute(5, request_id=b"order-1"))
        again = await bounded(group.execute(5, request_id=b"order-1"))
        assert again == first
        assert await bounded(group.call(5, request_id=b"order-1")) == 5
        assert await bounded(group.call(7, request_id=b"order-2")) == 12
        assert await bounded(group.call(7, request_id=b"order-2")) == 12
        assert group.machine.total == 12 and group.machine.applied == 2
        # Without a request id nothing is deduplicated.
        await bounded(group.execute(1))
        await bounded(group.execute(1))
        assert group.machine.total == 14


async def test_a_retried_batch_applies_each_command_once_and_returns_the_first_range() -> None:
    async with networks(1) as (net,):
        group = await lone(net)
        first = await bounded(group.execute_many([1, 2, 3], request_id=b"batch"))
        again = await bounded(group.execute_many([1, 2, 3], request_id=b"batch"))
        assert again == first
        assert await bounded(group.call_many([1, 2, 3], request_id=b"batch")) == [1, 3, 6]
        assert group.machine.total == 6
        # Concurrent single calls with their own ids are coalesced and still
        # each deduplicated on its own.
        ids = [f"c{i}".encode() for i in range(50)]
        await bounded(asyncio.gather(*(group.execute(1, request_id=r) for r in ids)))
        await bounded(asyncio.gather(*(group.execute(1, request_id=r) for r in ids)))
        assert group.machine.total == 56


async def test_a_repeat_older_than_the_dedupe_window_applies_again() -> None:
    async with networks(1) as (net,):
        group = await lone(net, consensus=fast(dedupe_window=5))
        await bounded(group.execute(1, request_id=b"old"))
        await bounded(group.execute(1, request_id=b"old"))
        assert group.machine.total == 1
        for _ in range(5):
            await bounded(group.execute(0))
        await bounded(group.execute(1, request_id=b"old"))
        assert group.machine.total == 2, "past the window the id is forgotten"


async def test_a_retry_on_another_member_after_a_failover_applies_once() -> None:
    key = mosaik.GroupKey.generate()
    async with networks(3, chain=True) as nets:
        groups = [join(n, key, fast(min_quorum=2)) for n in nets]
        await eventually(lambda: all(len(g.bonds()) == 2 for g in groups), 5.0, "mesh")
        await eventually(lambda: any(g.is_leader() for g in groups), 5.0, "a leader")
        old = leader_of(groups)
        index = await bounded(old.execute(10, request_id=b"pay-42"))
        total = await bounded(old.call(1, request_id=b"pay-43"))
        survivors = followers_of(groups)
        await eventually(
            lambda: all(g.committed() >= index + 1 for g in survivors), 5.0, "caught up"
        )
        await bounded(nets[groups.index(old)].close())
        await eventually(lambda: any(g.is_leader() for g in survivors), 10.0, "a new leader")
        for g in survivors:
            assert await bounded(g.execute(10, request_id=b"pay-42")) == index
            assert await bounded(g.call(1, request_id=b"pay-43")) == total
        await eventually(lambda: all(g.machine.total == 11 for g in survivors), 5.0, "applied")
        assert all(g.machine.applied == 2 for g in survivors)


async def test_a_restart_from_a_snapshot_keeps_the_request_ids_and_their_results(
    tmp_path: Path,
) -> None:
    secret, key = os.urandom(32), mosaik.GroupKey.generate()
    store = mosaik.DiskLogStore(tmp_path, segment_bytes=4096)

    async def node() -> tuple[mosaik.Network, mosaik.Group[Tally]]:
        net = await bounded(mosaik.Network.builder("requests").with_secret_key(secret).build())
        group = join(net, key, storage=store)
        await bounded(group.when().online())
        return net, group

    net, group = await node()
    index = await bounded(group.execute(100, request_id=b"first"))
    assert await bounded(group.call(1, request_id=b"second")) == 101
    for _ in range(30):
        await bounded(group.execute(0))
    await bounded(net.close())
    assert snapshots(tmp_path), "a snapshot was taken"

    net, group = await node()
    try:
        await eventually(lambda: group.machine.total == 101, 10.0, "the state restored")
        assert group.machine.restored, "restored from a snapshot, not replayed whole"
        assert await bounded(group.execute(100, request_id=b"first")) == index
        assert await bounded(group.call(1, request_id=b"second")) == 101
        assert group.machine.total == 101
    finally:
        await bounded(net.close())


async def test_request_ids_are_bytes_of_at_most_64() -> None:
    async with networks(1) as (net,):
        group = await lone(net)
        with pytest.raises(TypeError, match="bytes"):
            await group.execute(1, request_id="text")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="64"):
            await group.execute(1, request_id=b"x" * 65)
        assert await bounded(group.execute(1, request_id=b"x" * 64)) > 0
        assert await bounded(group.execute(1, request_id=b"")) > 0


async def test_command_unknown_carries_the_request_id_of_its_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Unknown:
        first, done, unknown = 0, 0, True

    def watch(pending: Any) -> asyncio.Future[Any]:
        future = asyncio.get_running_loop().create_future()
        future.set_result(Unknown())
        return future

    monkeypatch.setattr(_bridge, "watch", watch)
    proposals = Proposals(lambda data, on_assign, requests: None, False, 1 << 20)  # type: ignore[arg-type,return-value]
    with_id = proposals.submit("a", b"a", (b"rid", 0))
    without = proposals.submit("b", b"b", None)
    with pytest.raises(mosaik.CommandUnknown) as raised:
        await bounded(with_id)
    assert raised.value.request_id == b"rid" and raised.value.commands == ["a"]
    with pytest.raises(mosaik.CommandUnknown) as plain:
        await bounded(without)
    assert plain.value.request_id is None
