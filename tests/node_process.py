"""A node in its own process for multi-process tests: prints its address,
then the id of the first peer it learns, then exits."""

from __future__ import annotations

import argparse
import asyncio

import mosaik


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", action="append", default=[])
    parser.add_argument("--gossip", type=float, default=0.2)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    builder = mosaik.Network.builder("multi-process").with_gossip_interval(args.gossip)
    async with await builder.with_bootstrap(args.bootstrap).build() as net:
        print(f"ADDR {net.local.addr}", flush=True)
        async with asyncio.timeout(args.timeout):
            while not net.known_peers():
                await asyncio.sleep(0.01)
        print(f"KNOWS {net.known_peers()[0].peer_id}", flush=True)
        # Stay up long enough for the other side to learn us too.
        await asyncio.sleep(1.0)


if __name__ == "__main__":
    asyncio.run(main())
