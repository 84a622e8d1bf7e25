"""The story `mosaik demo` tells: form a group, run a workload, kill the
leader, fail over, restart the killed node, and check that every node holds
the same state."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from .demo_cluster import Cluster, until
from .demo_nodes import NodeProcess
from .demo_view import View
from .demo_workload import make_commands, run_workload

FORM_TIMEOUT = 20.0
FAILOVER_TIMEOUT = 10.0
CATCHUP_TIMEOUT = 20.0
FINAL_TIMEOUT = 10.0
QUERY_TIMEOUT = 3.0


@dataclass(frozen=True)
class DemoOptions:
    nodes: int
    duration: float
    rate: float
    kill_leader: bool


@dataclass(frozen=True)
class Verdict:
    ok: bool
    line: str


async def form(cluster: Cluster, view: View) -> None:
    first, rest = cluster.nodes[0], cluster.nodes[1:]
    view.event(
        f"starting {len(cluster.nodes)} node processes on 127.0.0.1 "
        "(heartbeat 0.1 s, election timeout 0.5 s)"
    )
    await cluster.start(first, [])
    view.event(f"{first.name} listening at {first.addr}")
    await asyncio.gather(*(cluster.start(n, [first.addr]) for n in rest))
    for node in rest:
        view.event(f"{node.name} started, bootstrapping from {first.name}")
    took = await until(cluster.formed, FORM_TIMEOUT, "bonding and electing a leader")
    leader = cluster.agreed_leader()
    assert leader is not None
    view.event(f"group formed in {took:.2f}s: {leader.name} elected leader", "bold green")
    view.snapshot()


async def workload(cluster: Cluster, view: View, first: int, count: int, rate: float) -> None:
    label = f"workload ({count} commands)"
    result = await run_workload(cluster.alive, make_commands(first, count), rate, view, label)
    speed = result.ok / result.seconds if result.seconds > 0 else 0.0
    view.event(
        f"{result.ok}/{result.total} commands committed in {result.seconds:.2f}s "
        f"({speed:.0f}/s), {result.failed} failed",
        "green" if result.failed == 0 else "yellow",
    )
    view.snapshot()


async def kill_leader(cluster: Cluster, view: View) -> NodeProcess:
    leader = cluster.agreed_leader()
    if leader is None:
        await until(cluster.formed, FORM_TIMEOUT, "agreeing on a leader")
        leader = cluster.agreed_leader()
        assert leader is not None
    view.event(f"killing the leader {leader.name} with SIGKILL", "bold red")
    started = time.monotonic()
    leader.kill()
    await leader.wait_killed()

    def failed_over() -> bool:
        new = cluster.agreed_leader()
        return new is not None and new is not leader

    await until(failed_over, FAILOVER_TIMEOUT, "failover to a new leader")
    new = cluster.agreed_leader()
    assert new is not None
    took = time.monotonic() - started
    view.event(f"failover: {new.name} leads {took:.2f}s after the kill", "bold green")
    view.snapshot()
    return leader


async def restart(cluster: Cluster, view: View, node: NodeProcess) -> None:
    view.event(f"restarting {node.name} with the same secret key and an empty log")
    started = time.monotonic()
    await cluster.start(node, [n.addr for n in cluster.alive()])
    target = cluster.max_committed()

    def caught_up() -> bool:
        return cluster.formed() and int(node.status.get("committed", 0)) >= target

    await until(caught_up, CATCHUP_TIMEOUT, f"{node.name} catching up")
    took = time.monotonic() - started
    view.event(f"{node.name} rejoined and caught up to index {target} in {took:.2f}s", "green")
    view.snapshot()


async def ask(node: NodeProcess, op: str) -> dict[str, Any]:
    return await node.call({"op": "query", "query": {"op": op}}, QUERY_TIMEOUT)


async def states(cluster: Cluster) -> list[tuple[NodeProcess, str, int, int]]:
    """(node, digest, position, keys) of every live node, or [] if one failed."""
    found = []
    for node in cluster.alive():
        digest, size = await ask(node, "digest"), await ask(node, "len")
        if not (digest.get("ok") and size.get("ok")):
            return []
        found.append((node, str(digest["result"]), int(digest["position"]), int(size["result"])))
    return found


def agree(found: list[tuple[NodeProcess, str, int, int]], count: int) -> bool:
    return len(found) == count and len({(d, p, k) for _, d, p, k in found}) == 1


async def final_check(cluster: Cluster, view: View) -> Verdict:
    count = len(cluster.nodes)
    deadline = time.monotonic() + FINAL_TIMEOUT
    found = await states(cluster)
    while not agree(found, count) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        found = await states(cluster)
    for node, digest, position, keys in found:
        view.event(f"{node.name} state digest {digest} at index {position} ({keys} keys)")
    if agree(found, count):
        _, digest, position, keys = found[0]
        return Verdict(
            True,
            f"CONSISTENT: all {count} nodes hold the same state "
            f"(sha256 {digest[:16]}, {keys} keys, index {position})",
        )
    return Verdict(
        False,
        f"INCONSISTENT: the {count} nodes do not hold the same state within {FINAL_TIMEOUT:g}s",
    )


async def scenario(cluster: Cluster, view: View, options: DemoOptions) -> Verdict:
    await form(cluster, view)
    total = max(1, round(options.duration * options.rate))
    await workload(cluster, view, 0, total, options.rate)
    if options.kill_leader and len(cluster.nodes) < 2:
        view.event("not killing the leader: that needs at least 2 nodes", "yellow")
    elif options.kill_leader:
        killed = await kill_leader(cluster, view)
        await workload(cluster, view, total, max(1, total // 4), options.rate)
        await restart(cluster, view, killed)
    return await final_check(cluster, view)


__all__ = ["DemoOptions", "Verdict", "scenario"]
