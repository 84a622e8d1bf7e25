"""A group member in its own process for multi-process tests.

Prints ``ADDR <endpoint-addr>``, then ``BONDS <n>`` whenever its bond count
changes; exits after ``--lifetime`` seconds (tests usually kill it first).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from timings import FAST

import mosaik


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--key", required=True, help="group key, 64 hex chars")
    parser.add_argument("--secret", default=None, help="node secret, 64 hex chars")
    parser.add_argument("--bootstrap", action="append", default=[])
    parser.add_argument("--lifetime", type=float, default=30.0)
    args = parser.parse_args()
    builder = mosaik.Network.builder("groups-test").with_gossip_interval(0.2)
    if args.secret:
        builder = builder.with_secret_key(args.secret)
    async with await builder.with_bootstrap(args.bootstrap).build() as net:
        print(f"ADDR {net.local.addr}", flush=True)
        key = mosaik.GroupKey.from_hex(args.key)
        group = (
            net.groups().with_key(key).with_consensus_config(mosaik.ConsensusConfig(**FAST)).join()
        )
        last = -1
        async with asyncio.timeout(args.lifetime):
            while True:
                if len(group.bonds()) != last:
                    last = len(group.bonds())
                    print(f"BONDS {last}", flush=True)
                await asyncio.sleep(0.01)


if __name__ == "__main__":
    with contextlib.suppress(TimeoutError):
        asyncio.run(main())
