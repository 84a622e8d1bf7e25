"""Shared helpers: bounded waiting and networks that are always closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TypeVar

import mosaik

T = TypeVar("T")

FAST_GOSSIP = 0.2
FAST_TTL = 1.0


async def eventually(
    condition: Callable[[], bool], timeout: float, what: str = "condition"
) -> float:
    """Polls ``condition`` until true; returns the seconds it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not condition():
        if loop.time() - start > timeout:
            raise AssertionError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(0.01)
    return loop.time() - start


async def bounded(aw: Awaitable[T], timeout: float = 10.0) -> T:
    return await asyncio.wait_for(aw, timeout)


@asynccontextmanager
async def networks(
    count: int, name: str = "test", *, chain: bool = False
) -> AsyncIterator[list[mosaik.Network]]:
    """``count`` networks on 127.0.0.1, optionally bootstrapped as a chain."""
    async with AsyncExitStack() as stack:
        nets: list[mosaik.Network] = []
        for i in range(count):
            builder = mosaik.Network.builder(name).with_gossip_interval(FAST_GOSSIP)
            if chain and i > 0:
                builder = builder.with_bootstrap([nets[-1].local.addr])
            net = await bounded(builder.build())
            stack.push_async_callback(net.close)
            nets.append(net)
        yield nets
