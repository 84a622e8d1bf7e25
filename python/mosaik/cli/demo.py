"""`mosaik demo`: a local group of node processes, a workload, a leader kill,
the failover, and a check that every node ends with the same state."""

from __future__ import annotations

import asyncio

import click

from . import console
from .demo_cluster import Cluster
from .demo_scenario import DemoOptions, Verdict, scenario
from .demo_view import make_view
from .logs import log_level_option

MAX_NODES = 9


async def run_demo(options: DemoOptions) -> Verdict:
    cluster = Cluster(options.nodes)
    try:
        with make_view(cluster.nodes) as view:
            return await scenario(cluster, view, options)
    finally:
        await cluster.close()


@click.command()
@click.option(
    "--nodes",
    type=click.IntRange(1, MAX_NODES),
    default=3,
    show_default=True,
    help="How many node processes to run.",
)
@click.option(
    "--duration",
    type=click.FloatRange(0.1, 30.0),
    default=5.0,
    show_default=True,
    help="Seconds of workload before the leader is killed.",
)
@click.option(
    "--rate",
    type=click.FloatRange(1.0, 2000.0),
    default=200.0,
    show_default=True,
    help="Commands per second in the workload.",
)
@click.option(
    "--kill-leader/--no-kill-leader",
    default=True,
    show_default=True,
    help="SIGKILL the leader after the workload, then restart it.",
)
@log_level_option
def demo(nodes: int, duration: float, rate: float, kill_leader: bool) -> int:
    """Run a replicated key-value store on a local group of node processes.

    Shows the bootstrap and election, a workload of commands, the leader
    killed with SIGKILL, the failover and its time, the killed node
    restarted and catching up, and finally each node's state digest. Exits 0
    only if every node holds the same state.
    """
    options = DemoOptions(nodes, duration, rate, kill_leader)
    verdict = asyncio.run(run_demo(options))
    style = "bold green" if verdict.ok else "bold red"
    console.out().print(f"[{style}]{verdict.line}[/]")
    return 0 if verdict.ok else 1


__all__ = ["demo"]
