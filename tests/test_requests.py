"""Exactly once: a command whose `request_id` the group applied within the
last `dedupe_window` entries is not applied again, and the call returns the
first one's index and result: on the same node, on another member after a
failover, and after a restart from a snapshot."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from replication_helpers import fast, leader_of

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
        # The members other than the one closed below (not "the followers now":
        # under load an election may already have moved the leadership).
        survivors = [g for g in groups if g is not old]
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


def settled_as(**outcome: Any) -> Callable[[Any], asyncio.Future[Any]]:
    """Stands in for `_bridge.watch`: every proposal settles with ``outcome``
    (``first``, ``done``, ``unknown``) at once."""

    def watch(pending: Any) -> asyncio.Future[Any]:
        future = asyncio.get_running_loop().create_future()
        future.set_result(SimpleNamespace(**outcome))
        return future

    return watch


def answered_as(**outcome: Any) -> Callable[[asyncio.AbstractEventLoop], Any]:
    """Stands in for `_bridge.of`: the loop's bridge answers every proposal
    batch with ``outcome`` on the loop's next turn."""

    def of(loop: asyncio.AbstractEventLoop) -> Any:
        def then(pending: Any, callback: Any) -> None:
            loop.call_soon(callback, True, SimpleNamespace(**outcome))

        return SimpleNamespace(then=then)

    return of


async def test_command_unknown_carries_the_request_id_of_its_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_bridge, "of", answered_as(first=0, done=0, unknown=True))
    proposals = Proposals(lambda data, on_assign, requests: None, False, 1 << 20, None)  # type: ignore[arg-type,return-value]
    with_id = proposals.submit("a", b"a", (b"rid", 0))
    without = proposals.submit("b", b"b", None)
    with pytest.raises(mosaik.CommandUnknown) as raised:
        await bounded(with_id)
    assert raised.value.request_id == b"rid" and raised.value.commands == ["a"]
    with pytest.raises(mosaik.CommandUnknown) as plain:
        await bounded(without)
    assert plain.value.request_id is None


class Keyed(mosaik.StateMachine):
    """Records the commands it applies, a batch at a time."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def signature(self) -> str:
        return "keyed_v1"

    def apply(self, command: Any, ctx: mosaik.ApplyContext) -> None:
        self.seen.append(command)

    def apply_batch(self, commands: list[Any], ctx: mosaik.ApplyContext) -> None:
        self.seen.extend(commands)

    def query(self, query: Any) -> Any:
        return self.seen


def entry(index: int, data: bytes, key: tuple[bytes, int] | None) -> Any:
    at = mosaik.Cursor(1, index)
    return (mosaik.ApplyContext(at, at, 1), data, key)


@pytest.mark.parametrize("machine", [Keyed, Tally])
def test_the_dedupe_decision_does_not_depend_on_how_entries_are_batched(
    machine: type[mosaik.StateMachine],
) -> None:
    from mosaik._replica import Replica
    from mosaik.codec import MSGPACK

    good, bad = MSGPACK.encode(1), b"\xc1"  # 0xc1 is never valid msgpack
    log = [
        entry(1, good, (b"k1", 0)),
        entry(2, bad, (b"k2", 0)),
        entry(3, good, None),
        entry(4, good, (b"k1", 0)),
        entry(5, good, (b"k2", 0)),
    ]
    whole, split = Replica(machine(), "a", 3), Replica(machine(), "b", 3)
    whole.apply(False, None, log, 5, False)
    for one in log:
        split.apply(False, None, [one], one[0].log_position.index, False)
    assert whole.requests.first == split.requests.first
    assert whole.machine.query(None) == split.machine.query(None)


def test_a_result_that_does_not_decode_in_a_restored_table_is_not_kept() -> None:
    from mosaik._replica import Replica
    from mosaik._requests import NOT_KEPT

    class Picky:
        """Encodes anything as text; decodes only ``cmd:<int>``."""

        def encode(self, value: Any) -> bytes:
            return repr(value).encode()

        def decode(self, data: bytes) -> Any:
            if not data.startswith(b"cmd:"):
                raise ValueError("not a command")
            return int(data[4:])

    class PickyTally(Tally):
        codec = Picky()

    source = Replica(PickyTally(), "a", 100)
    source.apply(False, None, [entry(1, b"cmd:5", (b"r", 0))], 1, False)
    snapshot = source.apply(False, None, [], 1, True)
    assert snapshot is not None
    restored = Replica(PickyTally(), "b", 100)
    restored.apply(False, snapshot, [], 1, False)
    index, outcome = restored.requests.first[(b"r", 0)]
    assert index == 1 and outcome is NOT_KEPT
    assert restored.machine.total == 5


async def test_a_batch_cut_by_a_leader_change_is_unknown_as_a_whole_with_its_request_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Retrying `err.commands` with `err.request_id` must apply each command
    once: the error names the whole batch, so a retry keeps every command's
    place (and key) in it."""

    async with networks(1) as (net,):
        group = await lone(net)
        monkeypatch.setattr(_bridge, "watch", settled_as(first=7, done=1, unknown=False))
        with pytest.raises(mosaik.CommandUnknown) as keyed:
            await group.execute_many([1, 2, 3], request_id=b"cut")
        assert keyed.value.commands == [1, 2, 3] and keyed.value.request_id == b"cut"
        with pytest.raises(mosaik.CommandOffline) as plain:
            await group.execute_many([1, 2, 3])
        assert plain.value.commands == [2, 3]
