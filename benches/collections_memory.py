"""Memory of a `mosaik.collections.Map[str, int]`: bytes per entry, and
whether memory stays bounded while the map takes many more writes than it
holds entries (its snapshots let the log be compacted).

One node (a one-member group in this process), so the process's resident
memory is one replica's: first ``--entries`` distinct keys are inserted,
then writes go on overwriting them until ``--writes`` in all. Inserts are
pipelined ``--window`` at a time. Writes benches/results/collections_memory.md.

Usage: python benches/collections_memory.py [--smoke] [--entries N] [--writes N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import platform
import resource
import sys
import time
from pathlib import Path

import mosaik
from mosaik import collections as mc

RESULTS = Path(__file__).resolve().parent / "results"


def rss_bytes() -> int:
    """This process's resident set size now (Linux /proc)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize()


def dict_bytes(m: mc.Map[str, int]) -> int:
    """What the Python objects of the map's contents take (the dict, its keys
    and its values; small ints are shared and count nothing)."""
    data = m._machine.data
    total = sys.getsizeof(data)
    for key, value in data.items():
        total += sys.getsizeof(key)
        if not -5 <= value <= 256:
            total += sys.getsizeof(value)
    return total


async def write(m: mc.Map[str, int], start: int, stop: int, entries: int, window: int) -> None:
    for low in range(start, stop, window):
        high = min(low + window, stop)
        await asyncio.gather(*(m.insert(f"key-{i % entries:07d}", i) for i in range(low, high)))


async def measure(entries: int, writes: int, window: int) -> list[str]:
    async with await mosaik.Network.new("collections-memory") as net:
        m = mc.Map[str, int].writer(net, "memory")
        await asyncio.wait_for(m.group.when().leader_elected(), 30)
        await m.insert("warm-up", 0)
        await m.remove("warm-up")
        gc.collect()
        base = rss_bytes()
        started = time.monotonic()
        await write(m, 0, entries, entries, window)
        filled = time.monotonic() - started
        gc.collect()
        full = rss_bytes()
        objects = dict_bytes(m)
        samples = [(entries, full)]
        step = max(entries, (writes - entries) // 10)
        at = entries
        while at < writes:
            nxt = min(at + step, writes)
            await write(m, at, nxt, entries, window)
            at = nxt
            gc.collect()
            samples.append((at, rss_bytes()))
        total = time.monotonic() - started
        assert len(m) == entries, f"{len(m)} entries, expected {entries}"
        peak = max(rss for _, rss in samples)
    mib = 1 << 20
    lines = [
        "# Memory of a replicated Map[str, int]",
        "",
        f"{platform.machine()}, Python {platform.python_version()}, one node; keys `key-NNNNNNN`"
        " (11 characters), int values; snapshot every"
        f" {mc.Map._machine_type.snapshot_every:,} entries.",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| entries | {entries:,} |",
        f"| writes in all | {writes:,} ({writes / total:,.0f} writes/s, window {window:,}) |",
        f"| resident memory before | {base / mib:.1f} MiB |",
        f"| resident memory with the entries | {full / mib:.1f} MiB |",
        f"| resident bytes per entry | {(full - base) / entries:.0f} B |",
        f"| of which the dict, keys and values | {objects / entries:.0f} B |",
        f"| peak resident memory over all writes | {peak / mib:.1f} MiB |",
        f"| inserting the entries took | {filled:.1f} s |",
        "",
        "| writes so far | resident MiB |",
        "| --- | --- |",
        *(f"| {w:,} | {rss / mib:.1f} |" for w, rss in samples),
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--writes", type=int, default=10_000_000)
    parser.add_argument("--window", type=int, default=2_000)
    parser.add_argument("--smoke", action="store_true", help="tiny counts; writes nothing")
    args = parser.parse_args()
    if args.smoke:
        args.entries, args.writes = 2_000, 10_000
    lines = asyncio.run(measure(args.entries, args.writes, args.window))
    print("\n".join(lines))
    if not args.smoke:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "collections_memory.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
