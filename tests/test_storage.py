"""Durable groups in one process: `DiskLogStore` arguments and paths, a node
restarted on its own directory, a damaged log, and snapshots that compact
the log and bring a late node up to date."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from machines import SNAPSHOT_EVERY, Counter, SnapshotCounter
from replication_helpers import fast

import mosaik
from conftest import bounded, eventually, networks

# Holds the store's lock until its stdin is closed.
LOCK_HOLDER = """
import fcntl, sys
with open(sys.argv[1] + "/LOCK", "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.read()
"""


def join_builder(
    net: mosaik.Network,
    key: mosaik.GroupKey,
    storage: mosaik.DiskLogStore | mosaik.InMemoryLogStore,
    machine: Counter | None = None,
) -> mosaik.GroupBuilder[Counter]:
    return (
        net.groups()
        .with_key(key)
        .with_state_machine(Counter() if machine is None else machine)
        .with_consensus_config(fast())
        .with_log_storage(storage)
    )


def join(
    net: mosaik.Network,
    key: mosaik.GroupKey,
    machine: Counter,
    storage: mosaik.DiskLogStore | mosaik.InMemoryLogStore,
) -> mosaik.Group[Counter]:
    return join_builder(net, key, storage, machine).join()


@asynccontextmanager
async def lone_node(
    secret: bytes, key: mosaik.GroupKey, store: mosaik.DiskLogStore, machine: Counter
) -> AsyncIterator[mosaik.Group[Counter]]:
    """A one-member group on its own network, leading itself."""
    net = await bounded(mosaik.Network.builder("storage").with_secret_key(secret).build())
    try:
        group = join(net, key, machine, store)
        await bounded(group.when().online())
        yield group
    finally:
        await bounded(net.close())


async def add(group: mosaik.Group[Any], count: int) -> None:
    for _ in range(count):
        await bounded(group.execute({"add": 1}))


def segments(path: Path) -> list[Path]:
    return sorted(path.glob("*.log"))


def snapshots(path: Path) -> list[Path]:
    return sorted(path.glob("snapshot-*.snap"))


def directory_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir())


# -- arguments and paths ------------------------------------------------------


def test_disk_log_store_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match="str or path"):
        mosaik.DiskLogStore(42)  # type: ignore[arg-type]
    with pytest.raises(mosaik.ConfigError, match="segment_bytes"):
        mosaik.DiskLogStore("/tmp/x", segment_bytes=10)
    with pytest.raises(mosaik.ConfigError, match="empty"):
        mosaik.DiskLogStore("")
    assert "segment_bytes=4096" in repr(mosaik.DiskLogStore("/tmp/x", segment_bytes=4096))


async def test_a_bad_storage_argument_or_snapshot_interval_is_refused() -> None:
    async with networks(1) as (net,):
        builder = net.groups().with_key(mosaik.GroupKey.generate())
        with pytest.raises(TypeError, match="log store"):
            builder.with_log_storage("/tmp/x")  # type: ignore[arg-type]
        with pytest.raises(mosaik.ConfigError, match="snapshot_every"):
            builder.with_state_machine(SnapshotCounter(snapshot_every=0)).join()


async def test_a_path_that_is_a_file_or_cannot_be_made_is_a_config_error(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("x")
    async with networks(1) as (net,):
        for path, words in ((plain, "not a directory"), (plain / "sub", "not writable")):
            with pytest.raises(mosaik.ConfigError, match=words):
                join(net, mosaik.GroupKey.generate(), Counter(), mosaik.DiskLogStore(path))
        assert net.groups() is not None


@contextmanager
def lock_held_elsewhere(path: Path) -> Iterator[None]:
    """Another process holds the store's LOCK meanwhile."""
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)


async def test_a_directory_locked_by_another_process_is_a_storage_error(tmp_path: Path) -> None:
    with lock_held_elsewhere(tmp_path):
        async with networks(1) as (net,):
            with pytest.raises(mosaik.StorageError, match="in use by another process"):
                join(net, mosaik.GroupKey.generate(), Counter(), mosaik.DiskLogStore(tmp_path))


async def test_a_directory_others_can_write_to_or_a_linked_file_in_it_is_a_storage_error(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    linked = tmp_path / "linked"
    linked.mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(b"not a meta file")
    (linked / "meta").symlink_to(elsewhere)
    key = mosaik.GroupKey.generate()
    async with networks(1) as (net,):
        refused = rf"refusing {re.escape(str(shared))}: .*mode 0777"
        with pytest.raises(mosaik.StorageError, match=refused):
            join(net, key, Counter(), mosaik.DiskLogStore(shared))
        refused = rf"refusing {re.escape(str(linked / 'meta'))}: it is a symbolic link"
        with pytest.raises(mosaik.StorageError, match=refused):
            join(net, key, Counter(), mosaik.DiskLogStore(linked))
    assert list(shared.iterdir()) == []
    assert elsewhere.read_bytes() == b"not a meta file"


# -- restarts -----------------------------------------------------------------


async def test_a_restarted_node_comes_back_with_its_log_and_replays_it(tmp_path: Path) -> None:
    secret, key = os.urandom(32), mosaik.GroupKey.generate()
    store = mosaik.DiskLogStore(tmp_path, segment_bytes=4096)
    async with lone_node(secret, key, store, Counter()) as group:
        await add(group, 300)
        term = group.log_position().term
    assert len(segments(tmp_path)) > 1, "the log rolled over several segments"
    again = Counter(record=True)
    async with lone_node(secret, key, store, again) as group:
        await eventually(lambda: again.value == 300, 10.0, "the old log replayed")
        assert group.log_position().term > term
        assert again.applied == sorted(set(again.applied)), "an index applied twice"
        await add(group, 5)
        assert (await bounded(group.query(None))).result == 305


async def test_a_flipped_byte_mid_log_stops_the_node_naming_segment_and_offset(
    tmp_path: Path,
) -> None:
    secret, key = os.urandom(32), mosaik.GroupKey.generate()
    store = mosaik.DiskLogStore(tmp_path, segment_bytes=4096)
    async with lone_node(secret, key, store, Counter()) as group:
        await add(group, 150)
    first = segments(tmp_path)[0]
    data = bytearray(first.read_bytes())
    offset = len(data) // 2
    data[offset] ^= 0xFF
    first.write_bytes(bytes(data))
    net = await bounded(mosaik.Network.builder("storage").with_secret_key(secret).build())
    try:
        with pytest.raises(mosaik.StorageError, match=rf"{first.name} is corrupt at byte \d+"):
            join(net, key, Counter(), store)
    finally:
        await bounded(net.close())


async def test_a_torn_last_record_is_cut_and_the_node_starts(tmp_path: Path) -> None:
    secret, key = os.urandom(32), mosaik.GroupKey.generate()
    store = mosaik.DiskLogStore(tmp_path)
    async with lone_node(secret, key, store, Counter()) as group:
        await add(group, 30)
    last = segments(tmp_path)[-1]
    with last.open("r+b") as f:
        f.truncate(last.stat().st_size - 3)
    again = Counter()
    async with lone_node(secret, key, store, again) as group:
        await eventually(lambda: again.value == 29, 10.0, "all but the torn command")
        await add(group, 1)
        assert (await bounded(group.query(None))).result == 30


# -- snapshots ----------------------------------------------------------------


async def test_snapshots_bound_the_log_directory(tmp_path: Path) -> None:
    secret, key = os.urandom(32), mosaik.GroupKey.generate()
    store = mosaik.DiskLogStore(tmp_path, segment_bytes=4096)
    async with lone_node(secret, key, store, SnapshotCounter()) as group:
        await add(group, 600)
    size = directory_size(tmp_path)
    assert len(snapshots(tmp_path)) == 1
    # Two snapshot intervals of entries, plus at most one segment of slack.
    assert size < 2 * SNAPSHOT_EVERY * 64 + 2 * 4096 + 1024, size
    again = SnapshotCounter()
    async with lone_node(secret, key, store, again):
        await eventually(lambda: again.value == 600, 10.0, "snapshot plus tail")
        assert again.restored and again.restored[0] >= 600 - SNAPSHOT_EVERY


async def test_a_node_joining_after_compaction_catches_up_from_a_snapshot() -> None:
    key = mosaik.GroupKey.generate()
    async with networks(3, chain=True) as nets:
        machines = [SnapshotCounter(), SnapshotCounter()]
        groups = [
            join(net, key, machine, mosaik.InMemoryLogStore())
            for net, machine in zip(nets[:2], machines, strict=True)
        ]
        await eventually(lambda: all(g.leader() is not None for g in groups), 10.0, "a leader")
        await add(groups[0], 300)
        late = SnapshotCounter()
        group = join(nets[2], key, late, mosaik.InMemoryLogStore())
        await eventually(lambda: late.value == 300, 15.0, "the late node caught up")
        assert late.restored, "the late node did not restore a snapshot"
        await add(group, 1)
        await eventually(
            lambda: all(m.value == 301 for m in [*machines, late]), 10.0, "everyone at 301"
        )


class BrokenRestore(SnapshotCounter):
    """A counter whose ``restore`` fails."""

    def restore(self, data: bytes) -> None:
        raise ValueError("this machine cannot read its snapshots")


async def test_a_failed_restore_stops_the_machine_instead_of_answering_from_it() -> None:
    key = mosaik.GroupKey.generate()
    async with networks(3, chain=True) as nets:
        groups = [join(net, key, SnapshotCounter(), mosaik.InMemoryLogStore()) for net in nets[:2]]
        await eventually(lambda: all(g.leader() is not None for g in groups), 10.0, "a leader")
        await add(groups[0], 300)
        broken = join(nets[2], key, BrokenRestore(), mosaik.InMemoryLogStore())
        with pytest.raises(mosaik.GroupTerminated):
            await bounded(broken.query(None, mosaik.Consistency.STRONG), 15.0)
        assert broken.machine.value == 0, "nothing was applied after the failed restore"


async def test_a_directory_remembers_its_group_and_refuses_another(tmp_path: Path) -> None:
    secret, ours, theirs = os.urandom(32), mosaik.GroupKey.generate(), mosaik.GroupKey.generate()
    store = mosaik.DiskLogStore(tmp_path)
    async with lone_node(secret, ours, store, Counter()) as group:
        await add(group, 3)
        ours_id = group.id
    net = await bounded(mosaik.Network.builder("storage").with_secret_key(secret).build())
    try:
        builder = join_builder(net, theirs, store)
        with pytest.raises(mosaik.StorageError) as refused:
            builder.join()
        message = str(refused.value)
        assert str(ours_id) in message and str(builder.group_id()) in message, message
        assert "give each group a directory" in message
    finally:
        await bounded(net.close())
    again = Counter()
    async with lone_node(secret, ours, store, again) as group:
        await eventually(lambda: again.value == 3, 10.0, "its own log, still there")
