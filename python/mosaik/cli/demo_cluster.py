"""The demo's node processes as a group: who is alive, who leads, waiting."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from ..keys import GroupKey
from .demo_nodes import DemoError, NodeProcess
from .keys import new_key_hex

POLL = 0.05


class Cluster:
    def __init__(self, count: int) -> None:
        self.group_key = GroupKey.generate().to_hex()
        self.nodes = [NodeProcess(f"node-{i + 1}", new_key_hex()) for i in range(count)]

    def alive(self) -> list[NodeProcess]:
        return [n for n in self.nodes if n.alive]

    def agreed_leader(self) -> NodeProcess | None:
        """The leader every live node names, if they agree on a live one."""
        live = self.alive()
        if not live or any(not n.status for n in live):
            return None
        named = {n.status.get("leader") for n in live}
        if len(named) != 1:
            return None
        leader_id = named.pop()
        return next((n for n in live if n.id == leader_id), None)

    def meshed(self) -> bool:
        """Every live node is bonded to every other live node."""
        live = self.alive()
        return all(n.status and n.status["bonds"] == len(live) - 1 for n in live)

    def formed(self) -> bool:
        return self.meshed() and self.agreed_leader() is not None

    def max_committed(self) -> int:
        return max((int(n.status.get("committed", 0)) for n in self.alive()), default=0)

    async def start(self, node: NodeProcess, bootstrap: list[str]) -> None:
        await node.start(self.group_key, bootstrap)

    async def close(self) -> None:
        """Stops every node process (killing any that does not stop in time)."""
        await asyncio.gather(*(n.stop() for n in self.nodes), return_exceptions=True)


async def until(condition: Callable[[], bool], limit: float, what: str) -> float:
    """Polls ``condition``; the seconds until it held, or a `DemoError`."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not condition():
        if loop.time() - start > limit:
            raise DemoError(f"{what} did not happen within {limit:g}s")
        await asyncio.sleep(POLL)
    return loop.time() - start


__all__ = ["Cluster", "until"]
