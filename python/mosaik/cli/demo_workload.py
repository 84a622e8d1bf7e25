"""The demo's workload: key-value commands at a steady rate, spread over the
live nodes (followers forward them to the leader), bounded in count and time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .demo_nodes import NodeProcess
from .demo_view import View

IN_FLIGHT = 64
ATTEMPTS = 3
CALL_TIMEOUT = 6.0
KEYS = 64


@dataclass(frozen=True)
class WorkloadResult:
    total: int
    ok: int
    seconds: float

    @property
    def failed(self) -> int:
        return self.total - self.ok


def make_commands(first: int, count: int) -> list[dict[str, Any]]:
    """Sets of 64 keys with every tenth command a delete; all idempotent, so
    a command whose answer was lost may be sent again."""
    commands: list[dict[str, Any]] = []
    for i in range(first, first + count):
        if i % 10 == 9:
            commands.append({"op": "delete", "key": f"key-{(i * 7) % KEYS}"})
        else:
            commands.append({"op": "set", "key": f"key-{i % KEYS}", "value": i})
    return commands


async def send(nodes: Sequence[NodeProcess], index: int, command: dict[str, Any]) -> bool:
    """One command, tried on up to `ATTEMPTS` live nodes."""
    for attempt in range(ATTEMPTS):
        live = [n for n in nodes if n.alive]
        if not live:
            return False
        node = live[(index + attempt) % len(live)]
        reply = await node.call({"op": "execute", "command": command}, CALL_TIMEOUT)
        if reply.get("ok"):
            return True
        await asyncio.sleep(0.1)
    return False


async def run_workload(
    nodes: Callable[[], Sequence[NodeProcess]],
    commands: list[dict[str, Any]],
    rate: float,
    view: View,
    label: str,
) -> WorkloadResult:
    loop = asyncio.get_running_loop()
    start = loop.time()
    limit = len(commands) / rate * 3 + 10.0
    gate = asyncio.Semaphore(IN_FLIGHT)
    counts = {"done": 0, "ok": 0}

    async def paced(index: int, command: dict[str, Any]) -> None:
        await asyncio.sleep(max(0.0, start + index / rate - loop.time()))
        async with gate:
            ok = await send(nodes(), index, command)
        counts["done"] += 1
        counts["ok"] += int(ok)
        view.progress(label, counts["done"], len(commands))

    tasks = [asyncio.create_task(paced(i, c)) for i, c in enumerate(commands)]
    try:
        await asyncio.wait(tasks, timeout=limit)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=CALL_TIMEOUT)
        view.progress_end()
    return WorkloadResult(len(commands), counts["ok"], loop.time() - start)


__all__ = ["WorkloadResult", "make_commands", "run_workload"]
