"""Commit latency and throughput of a 3-node group in one process.

Three Networks on 127.0.0.1 hold a replicated counter whose apply is Python
code. Reports sequential `execute` latency (p50/p99) on the leader and on a
follower, pipelined throughput with W commands in flight from the leader
(counted when applied on all three), and `execute_many` batches. Every run
ends by checking the three counters agree with the acknowledged commands.
Usage: python benches/replication.py [--seconds 3] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import mosaik

# The counter that tests use too (tests/machines.py).
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))
from machines import Counter

CONSENSUS = mosaik.ConsensusConfig(
    heartbeat_interval=0.1,
    heartbeat_jitter=0.02,
    election_timeout=0.5,
    election_timeout_jitter=0.1,
    bootstrap_delay=0.2,
)


async def start_group() -> tuple[list[mosaik.Network], list[mosaik.Group[Counter]]]:
    key = mosaik.GroupKey.generate()
    nets: list[mosaik.Network] = []
    for _ in range(3):
        builder = mosaik.Network.builder("replication-bench")
        if nets:
            builder = builder.with_bootstrap([nets[0].local.addr])
        nets.append(await builder.build())
    groups = [
        n.groups()
        .with_key(key)
        .with_state_machine(Counter())
        .with_consensus_config(CONSENSUS)
        .join()
        for n in nets
    ]
    async with asyncio.timeout(15):
        while not (all(len(g.bonds()) == 2 for g in groups) and all(g.leader() for g in groups)):
            await asyncio.sleep(0.01)
        for g in groups:
            await g.when().online()
    return nets, groups


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


async def sequential(group: mosaik.Group[Counter], seconds: float, limit: int) -> dict[str, float]:
    samples: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end and len(samples) < limit:
        start = time.perf_counter()
        await group.execute(1)
        samples.append(time.perf_counter() - start)
    return {
        "ops_per_s": len(samples) / sum(samples),
        "p50_ms": percentile(samples, 0.5) * 1e3,
        "p99_ms": percentile(samples, 0.99) * 1e3,
        "count": len(samples),
    }


async def pipelined(
    groups: list[mosaik.Group[Counter]], leader: mosaik.Group[Counter], window: int, total: int
) -> float:
    """``window`` clients, each feeding its share of ``total`` one at a time."""
    last = 0

    async def client(count: int) -> None:
        nonlocal last
        for _ in range(count):
            last = max(last, await leader.feed(1))

    start = time.perf_counter()
    share, extra = divmod(total, window)
    await asyncio.gather(*(client(share + (i < extra)) for i in range(window)))
    for g in groups:
        await g.when().committed().reaches(last)
    return total / (time.perf_counter() - start)


async def batched(
    groups: list[mosaik.Group[Counter]], leader: mosaik.Group[Counter], size: int, batches: int
) -> float:
    start = time.perf_counter()
    last = 0
    for _ in range(batches):
        last = (await leader.execute_many([1] * size))[-1]
    for g in groups:
        await g.when().committed().reaches(last)
    return size * batches / (time.perf_counter() - start)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--smoke", action="store_true", help="a few hundred commands only")
    args = parser.parse_args()
    limit = 200 if args.smoke else 1_000_000
    total = 300 if args.smoke else 20_000
    nets, groups = await start_group()
    acknowledged = 0
    try:
        leader = next(g for g in groups if g.is_leader())
        follower = next(g for g in groups if not g.is_leader())
        for name, group in (("leader", leader), ("follower", follower)):
            r = await sequential(group, args.seconds, limit)
            acknowledged += int(r["count"])
            print(
                f"sequential execute on the {name}: {r['ops_per_s']:.0f} ops/s, "
                f"p50 {r['p50_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms"
            )
        for window in (100, 2000):
            rate = await pipelined(groups, leader, window, total)
            acknowledged += total
            print(f"pipelined feed, W={window}: {rate:.0f} commits/s (applied on all 3)")
        rate = await batched(groups, leader, 1000, 3 if args.smoke else 20)
        acknowledged += 1000 * (3 if args.smoke else 20)
        print(f"execute_many of 1000: {rate:.0f} commits/s (applied on all 3)")
        last = await leader.execute(0)
        for g in groups:
            await g.when().committed().reaches(last)
        values = {g.machine.value for g in groups}
        status = "OK" if values == {acknowledged} else f"MISMATCH {values} != {acknowledged}"
        print(f"consistency: counters {sorted(values)}, acknowledged {acknowledged}: {status}")
        if status != "OK":
            raise SystemExit(1)
    finally:
        for net in nets:
            await net.close()


if __name__ == "__main__":
    asyncio.run(main())
