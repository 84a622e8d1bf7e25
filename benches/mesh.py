"""How long N nodes in one process take to form a full bond mesh.

Each run starts N Networks on 127.0.0.1 bootstrapped as a chain, joins one
group on each, and times from the first join until every node is bonded to
all N-1 others. Usage: python benches/mesh.py [--sizes 3 7 15] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import mosaik

FAST = mosaik.ConsensusConfig(
    heartbeat_interval=0.1,
    heartbeat_jitter=0.02,
    election_timeout=0.5,
    election_timeout_jitter=0.1,
    bootstrap_delay=0.2,
)


async def mesh_time(size: int, timeout: float = 30.0) -> float:
    key = mosaik.GroupKey.generate()
    nets: list[mosaik.Network] = []
    try:
        for _ in range(size):
            builder = mosaik.Network.builder("mesh-bench").with_gossip_interval(0.5)
            if nets:
                builder = builder.with_bootstrap([nets[-1].local.addr])
            nets.append(await builder.build())
        start = time.perf_counter()
        groups = [n.groups().with_key(key).with_consensus_config(FAST).join() for n in nets]
        while not all(len(g.bonds()) == size - 1 for g in groups):
            if time.perf_counter() - start > timeout:
                raise TimeoutError(f"{size} nodes did not mesh within {timeout}s")
            await asyncio.sleep(0.005)
        return time.perf_counter() - start
    finally:
        for net in nets:
            await net.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 7, 15])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"{'nodes':>5} {'median s':>9} {'runs'}")
    for size in args.sizes:
        times = [await mesh_time(size) for _ in range(args.runs)]
        runs = " ".join(f"{t:.3f}" for t in times)
        print(f"{size:>5} {statistics.median(times):>9.3f} {runs}")


if __name__ == "__main__":
    asyncio.run(main())
