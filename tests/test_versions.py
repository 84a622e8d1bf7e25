"""Machine versions and settings mismatches: a group moves to new machine
code at one committed index once every member runs it, a member whose code
is too old stops instead of diverging, snapshots carry the version, and a
node that holds the key under other settings is warned of and counted."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import msgpack
import pytest
from machines import Counter
from replication_helpers import fast

import mosaik
from conftest import bounded, eventually, networks
from mosaik._replica import Replica
from mosaik._versions import UnsupportedVersion, switch_key
from mosaik.cli.node_runner import Upgrader

WAIT = 10.0


class Tally(mosaik.StateMachine):
    """Adds each command once at version 1 and twice from version 2 on (the
    new code); records every version it was told of."""

    snapshot_every = 8

    def __init__(self) -> None:
        self.total = 0
        self.told: list[int] = []

    def signature(self) -> str:
        return "tally"

    def apply(self, command: Any, ctx: mosaik.ApplyContext) -> None:
        self.total += command * (2 if self.active_version >= 2 else 1)

    def upgrade(self, version: int) -> None:
        self.told.append(version)

    def query(self, query: Any) -> int:
        return self.total

    def snapshot(self) -> bytes:
        return msgpack.packb(self.total)

    def restore(self, data: bytes) -> None:
        # Replaces the whole state, as a restore may: mosaik sets the
        # version afterwards.
        self.__dict__ = {"total": msgpack.unpackb(data), "told": []}


class TallyV2(Tally):
    version = 2


def join(net: mosaik.Network, key: mosaik.GroupKey, machine: Tally) -> mosaik.Group[Tally]:
    return (
        net.groups().with_key(key).with_state_machine(machine).with_consensus_config(fast()).join()
    )


async def meshed(groups: list[mosaik.Group[Tally]]) -> None:
    count = len(groups)
    await eventually(lambda: all(len(g.bonds()) == count - 1 for g in groups), WAIT, "mesh")
    await eventually(
        lambda: len({g.leader() for g in groups}) == 1 and groups[0].leader() is not None,
        WAIT,
        "one leader",
    )


async def announced(groups: list[mosaik.Group[Tally]], version: int) -> None:
    """Waits until every member sees every other announce ``version``."""
    await eventually(
        lambda: all(
            len(g.member_versions()) == len(groups) - 1
            and all(v == version for v in g.member_versions().values())
            for g in groups
        ),
        WAIT,
        f"every member announces version {version}",
    )


async def write_once(group: mosaik.Group[Tally], command: int, request_id: bytes) -> None:
    """Executes ``command`` exactly once, retrying with its request id while
    a leader that left is replaced (`CommandUnknown`, `CommandOffline`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        try:
            await bounded(group.execute(command, request_id=request_id))
            return
        except (mosaik.CommandUnknown, mosaik.CommandOffline):
            if loop.time() > deadline:
                raise


async def applied(group: mosaik.Group[Tally], index: int) -> None:
    await eventually(lambda: group._replica.applied >= index, WAIT, f"index {index} applied")


def entry(index: int, data: bytes, key: tuple[bytes, int] | None = None) -> Any:
    at = mosaik.Cursor(1, index)
    return (mosaik.ApplyContext(at, at, 1), data, key)


# -- the apply layer --------------------------------------------------------


def test_a_switch_entry_tells_the_machine_before_the_next_entry() -> None:
    replica = Replica(TallyV2(), "test", 100)
    one = msgpack.packb(1)
    replica.apply(
        False, None, [entry(1, one), entry(2, b"", switch_key(2)), entry(3, one)], 3, False
    )
    assert (replica.machine.total, replica.version, replica.version_since) == (3, 2, 2)
    assert replica.machine.told == [2]
    # A repeated or older switch changes nothing.
    replica.apply(
        False, None, [entry(4, b"", switch_key(2)), entry(5, b"", switch_key(1))], 5, False
    )
    assert (replica.version, replica.version_since, replica.machine.told) == (2, 2, [2])


def test_snapshots_carry_the_version_and_a_restore_hears_it_first() -> None:
    source = Replica(TallyV2(), "source", 100)
    snapshot = source.apply(
        False, None, [entry(1, b"", switch_key(2)), entry(2, msgpack.packb(5))], 2, True
    )
    assert snapshot is not None
    target = Replica(TallyV2(), "target", 100)
    target.apply(False, snapshot, [], 2, False)
    # A restore that replaced the whole state still runs at version 2; the
    # upgrade hook is for the switch itself.
    machine = target.machine
    assert (target.version, machine.total, machine.active_version, machine.told) == (2, 10, 2, [])
    # A rebuild from nothing starts again at version 1.
    target.apply(True, None, [], 0, False)
    assert (target.version, target.machine.active_version) == (1, 1)


def test_code_that_does_not_apply_the_groups_version_stops_instead_of_diverging() -> None:
    old = Replica(Tally(), "old", 100)
    with pytest.raises(UnsupportedVersion, match="deploy the new code"):
        old.apply(False, None, [entry(1, msgpack.packb(1)), entry(2, b"", switch_key(2))], 2, False)
    newer = Replica(TallyV2(), "newer", 100)
    snapshot = newer.apply(False, None, [entry(1, b"", switch_key(2))], 1, True)
    assert snapshot is not None
    with pytest.raises(UnsupportedVersion, match="snapshot"):
        Replica(Tally(), "old", 100).apply(False, snapshot, [], 1, False)


def test_a_failing_upgrade_hook_is_logged_and_the_switch_holds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Failing(TallyV2):
        def upgrade(self, version: int) -> None:
            raise RuntimeError("migration bug")

    caplog.set_level(logging.ERROR, logger="mosaik")
    replica = Replica(Failing(), "failing", 100)
    one = msgpack.packb(1)
    replica.apply(False, None, [entry(1, b"", switch_key(2)), entry(2, one)], 2, False)
    assert (replica.version, replica.machine.total) == (2, 2)
    assert any("upgrade(2) failed at index 1" in r.getMessage() for r in caplog.records)


def test_a_version_that_is_not_a_positive_int_is_a_config_error() -> None:
    class Broken(Tally):
        version = 0

    with pytest.raises(mosaik.ConfigError, match="version"):
        Replica(Broken(), "broken", 100)


async def test_request_ids_in_mosaiks_own_namespace_are_refused() -> None:
    async with networks(1) as nets:
        group = join(nets[0], mosaik.GroupKey.generate(), TallyV2())
        await bounded(group.when().is_leader(), WAIT)
        with pytest.raises(ValueError, match="mosaik's own"):
            await group.execute(1, request_id=switch_key(9)[0])
        assert group.machine_version == 1


# -- whole groups -----------------------------------------------------------


async def test_upgrade_switches_every_member_at_the_same_index() -> None:
    key = mosaik.GroupKey.generate()
    async with networks(3, chain=True) as nets:
        groups = [join(n, key, TallyV2()) for n in nets]
        await meshed(groups)
        await announced(groups, 2)
        await bounded(groups[0].execute(1))
        follower = next(g for g in groups if not g.is_leader())
        index = await bounded(follower.upgrade())
        await bounded(follower.execute(1))
        for g in groups:
            await applied(g, index + 1)
            assert (g.machine_version, g._replica.version_since) == (2, index)
            assert (g.machine.total, g.machine.told) == (3, [2])
        # Upgrading again changes nothing and says where the switch was.
        assert await bounded(groups[0].upgrade(2)) == index


async def test_upgrade_is_refused_while_a_member_runs_older_code() -> None:
    key = mosaik.GroupKey.generate()
    async with networks(3, chain=True) as nets:
        groups = [join(nets[0], key, TallyV2()), join(nets[1], key, TallyV2())]
        groups.append(join(nets[2], key, Tally()))
        await meshed(groups)
        await eventually(lambda: len(groups[0].member_versions()) == 2, WAIT, "versions known")
        before = groups[0].committed()
        with pytest.raises(mosaik.ConfigError, match=str(nets[2].local.id)[:12]):
            await bounded(groups[0].upgrade())
        with pytest.raises(mosaik.ConfigError, match="up to 1"):
            await bounded(groups[2].upgrade(2))
        assert groups[0].committed() == before
        assert all(g.machine_version == 1 for g in groups)


async def test_a_rolling_upgrade_keeps_the_group_writable_then_switches() -> None:
    key = mosaik.GroupKey.generate()
    async with networks(3, chain=True) as nets:
        groups = [join(n, key, Tally()) for n in nets]
        await meshed(groups)
        written = 0
        for i in range(3):
            # Member i goes down and comes back with the new code; the
            # others keep taking writes meanwhile.
            await bounded(groups[i].leave())
            others = [g for j, g in enumerate(groups) if j != i]
            await write_once(others[0], 1, f"while {i} is away".encode())
            written += 1
            groups[i] = join(nets[i], key, TallyV2())
            await meshed(groups)
            await write_once(groups[i], 1, f"once {i} is back".encode())
            written += 1
        await announced(groups, 2)
        index = await bounded(groups[0].upgrade())
        await bounded(groups[1].execute(10))
        for g in groups:
            await applied(g, index + 1)
            assert g.machine_version == 2
            assert g.machine.total == written + 20


async def test_a_late_member_restores_the_version_from_a_snapshot() -> None:
    key = mosaik.GroupKey.generate()
    async with networks(3, chain=True) as nets:
        groups = [join(n, key, TallyV2()) for n in nets[:2]]
        await meshed(groups)
        await announced(groups, 2)
        await bounded(groups[0].upgrade())
        for _ in range(3):
            await bounded(groups[0].execute_many([1] * 10))
        late = join(nets[2], key, TallyV2())
        await applied(late, groups[0].committed())
        assert late.machine_version == 2
        assert late.machine.total == 60
        assert late.machine.active_version == 2


async def test_a_member_with_old_code_stops_at_the_switch(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="mosaik")
    key = mosaik.GroupKey.generate()
    async with networks(3, chain=True) as nets:
        groups = [join(n, key, TallyV2()) for n in nets[:2]]
        await meshed(groups)
        await announced(groups, 2)
        await bounded(groups[0].execute(1))
        index = await bounded(groups[0].upgrade())
        old = join(nets[2], key, Tally())
        await eventually(
            lambda: any("deploy the new code" in r.getMessage() for r in caplog.records),
            WAIT,
            "the old member says why it stops",
        )
        assert old.machine_version == 1
        assert old.machine.total == 1
        assert old._replica.applied < index
        with pytest.raises(mosaik.GroupTerminated):
            await bounded(old.execute(1))


async def test_a_peer_with_the_key_and_another_machine_is_warned_of_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class CounterV2(Counter):
        def signature(self) -> str:
            return "counter_v2"

    caplog.set_level(logging.WARNING, logger="mosaik")
    key = mosaik.GroupKey.generate()
    async with networks(2, chain=True) as nets:
        ours = nets[0].groups().with_key(key).with_state_machine(Counter()).join()
        theirs = nets[1].groups().with_key(key).with_state_machine(CounterV2()).join()
        name = "mosaik.groups.bonds.rejected{reason=config_mismatch}"
        await eventually(
            lambda: ours.metrics().get(name) == 1.0 and theirs.metrics().get(name) == 1.0,
            WAIT,
            "both count the mismatch",
        )

        def warnings() -> list[str]:
            return [
                r.getMessage()
                for r in caplog.records
                if r.levelno == logging.WARNING and "never bond" in r.getMessage()
            ]

        # Native log records reach Python's logging through a thread of
        # their own, after the counter has moved.
        await eventually(lambda: len(warnings()) == 2, WAIT, "both warnings logged")
        assert all("differs in: machine signature)" in w for w in warnings())
        assert str(nets[1].local.id) in " ".join(warnings())
        assert len(ours.bonds()) == 0 and len(theirs.bonds()) == 0


class FakeGroup:
    """What `Upgrader` reads of a group, set by the test."""

    def __init__(self, machine: Tally) -> None:
        self.machine = machine
        self.machine_version = 1
        self.members: dict[str, int | None] = {}
        self.leading = True
        self.upgrades: list[int | None] = []

    def member_versions(self) -> dict[str, int | None]:
        return dict(self.members)

    def is_leader(self) -> bool:
        return self.leading

    async def upgrade(self, version: int | None = None) -> int:
        self.upgrades.append(version)
        self.machine_version = version or 1
        return 1


async def test_mosaik_node_switches_only_once_every_member_it_has_seen_runs_the_new_code() -> None:
    group = FakeGroup(TallyV2())
    upgrader = Upgrader(group)  # type: ignore[arg-type]
    group.members = {"b": 1, "c": 1}
    await upgrader.step()
    # c went away to be upgraded: b alone announcing version 2 is not enough.
    group.members = {"b": 2}
    await upgrader.step()
    # A follower never switches.
    group.members, group.leading = {"b": 2, "c": 2}, False
    await upgrader.step()
    assert group.upgrades == []
    group.leading = True
    await upgrader.step()
    assert group.upgrades == [2]
    await upgrader.step()
    assert group.upgrades == [2]
