"""Snapshots and disk logs at scale: 1,000,000 commands through a 3-node
group whose members keep their logs in `DiskLogStore`s and snapshot a
counter every ``--every`` entries. One member is stopped for the middle half
of the run and started again on its directory: it must catch up from a
snapshot plus the tail. Reports the largest log directory seen (against the
bound below), the catch-up time and the commit rates; fails unless all three
counters end equal to the number of acknowledged commands.

Bound on a log directory: one snapshot, the entries of at most two snapshot
intervals (the log is compacted behind the previous snapshot), at most one
segment of slack, and the small meta and LOCK files.

Usage: python benches/durability.py [--smoke] [--total N] [--every N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import mosaik

# The counters that tests use too (tests/machines.py).
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))
from machines import BatchCounter, SnapshotCounter

BATCH = 1000
SEGMENT = 1 << 20
# An entry on disk: an 8-byte record header and the encoded entry (term,
# index, a one-byte msgpack command), at most 32 bytes in all.
RECORD_MAX = 32
CONSENSUS: dict[str, Any] = {
    "heartbeat_interval": 0.05,
    "heartbeat_jitter": 0.01,
    "max_missed_heartbeats": 10,
    "election_timeout": 0.4,
    "election_timeout_jitter": 0.2,
    "bootstrap_delay": 0.1,
    "min_quorum": 2,
}


class DurableCounter(SnapshotCounter, BatchCounter):
    """A snapshotting counter that takes each committed batch in one call."""


def dir_size(path: Path) -> int:
    """Bytes of the files in ``path``; a file compacted away meanwhile counts 0."""
    total = 0
    for entry in os.scandir(path):
        with contextlib.suppress(FileNotFoundError):
            total += entry.stat().st_size
    return total


class Member:
    def __init__(self, name: str, root: Path, every: int) -> None:
        self.name = name
        self.secret = os.urandom(32)
        self.data = root / name
        self.net: mosaik.Network | None = None
        self.group: mosaik.Group[DurableCounter] | None = None
        self.every = every
        self.machine = DurableCounter(snapshot_every=every)
        self.largest = 0

    async def start(self, key: mosaik.GroupKey, bootstrap: list[mosaik.EndpointAddr]) -> None:
        builder = (
            mosaik.Network.builder("durability-bench")
            .with_secret_key(self.secret)
            .with_gossip_interval(0.2)
            .with_bootstrap(bootstrap)
        )
        self.net = await asyncio.wait_for(builder.build(), 10)
        self.machine = DurableCounter(snapshot_every=self.every)
        self.group = (
            self.net.groups()
            .with_key(key)
            .with_state_machine(self.machine)
            .with_consensus_config(mosaik.ConsensusConfig(**CONSENSUS))
            .with_log_storage(mosaik.DiskLogStore(self.data, segment_bytes=SEGMENT))
            .join()
        )

    async def stop(self) -> None:
        if self.net is not None:
            await asyncio.wait_for(self.net.close(), 10)
        self.net = self.group = None

    def measure(self) -> None:
        if self.data.exists():
            self.largest = max(self.largest, dir_size(self.data))


async def wait_for(condition: Any, limit: float, what: str) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > limit:
            raise SystemExit(f"FAILED: {what} not within {limit:.0f} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


def leader_of(members: list[Member]) -> Member | None:
    return next((m for m in members if m.group is not None and m.group.is_leader()), None)


async def feed(members: list[Member], count: int, limit: float) -> tuple[int, float]:
    """``count`` commands in batches through whichever member leads."""
    acked = 0
    start = time.monotonic()
    while acked < count:
        if time.monotonic() - start > limit:
            raise SystemExit(f"FAILED: {acked} of {count} commands within {limit:.0f} s")
        leader = leader_of(members)
        if leader is None or leader.group is None:
            await asyncio.sleep(0.05)
            continue
        try:
            await asyncio.wait_for(leader.group.execute_many([1] * BATCH), 10)
        except (mosaik.CommandError, TimeoutError):
            continue
        acked += BATCH
        if acked % (50 * BATCH) == 0:
            for m in members:
                m.measure()
    return acked, time.monotonic() - start


async def run(total: int, every: int) -> int:
    key = mosaik.GroupKey.generate()
    with tempfile.TemporaryDirectory(prefix="durability-bench-") as tmp:
        members = [Member(name, Path(tmp), every) for name in ("a", "b", "c")]
        await members[0].start(key, [])
        assert members[0].net is not None
        seed = [members[0].net.local.addr]
        for m in members[1:]:
            await m.start(key, seed)
        await wait_for(
            lambda: any(m.group and m.group.is_leader() for m in members), 20, "a leader"
        )
        quarter = total // 4
        acked, t1 = await feed(members, quarter, 300)
        late = members[2]
        await late.stop()
        more, t2 = await feed(members, 2 * quarter, 600)
        acked += more
        await late.start(key, seed)
        started = time.monotonic()
        caught_up = await wait_for(lambda: late.machine.value >= acked, 120, "the late node")
        restores = len(late.machine.restored)
        more, t3 = await feed(members, total - acked, 300)
        acked += more
        await wait_for(lambda: all(m.machine.value == acked for m in members), 60, "agreement")
        for m in members:
            m.measure()
        bound = SEGMENT + 2 * every * RECORD_MAX + 64 + 8192
        print(f"commands: {acked:,}, snapshot every {every:,} entries, segments of {SEGMENT:,} B")
        print(
            f"commit rate (execute_many of {BATCH}, 3 disk logs): {acked / (t1 + t2 + t3):,.0f}/s"
        )
        print(
            f"late node: down for {2 * quarter:,} commands, caught up in {caught_up:.2f} s "
            f"({restores} snapshot restore(s)), {time.monotonic() - started:.2f} s to the end"
        )
        largest = max(m.largest for m in members)
        sizes = ", ".join(f"{m.name} {m.largest / 1e6:.2f} MB" for m in members)
        print(f"largest log directory: {sizes}; bound {bound / 1e6:.2f} MB")
        for m in members:
            await m.stop()
        if restores == 0:
            print("FAILED: the late node did not restore a snapshot")
            return 1
        if largest > bound:
            print("FAILED: a log directory grew past the bound")
            return 1
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="20,000 commands, < 30 s")
    parser.add_argument("--total", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=100_000)
    args = parser.parse_args()
    total, every = (20_000, 2_000) if args.smoke else (args.total, args.every)
    sys.exit(asyncio.run(run(total, every)))


if __name__ == "__main__":
    main()
