"""A job queue worked by three nodes, with a lock and fencing tokens.

Run it with ``python -m mosaik.examples.jobs`` and watch: three nodes (three
`Network`s in this process, on 127.0.0.1) share four collections:

- ``jobs``, a `Queue`: the first node puts the jobs in; every node takes
  them with ``get()``, which hands each job to exactly one node;
- ``ledger``, a `Lock`: a node holds it while it writes a result to the
  ledger, a stand-in for an external store that refuses writes carrying an
  older fencing token than one it has seen;
- ``done``, a `Map` of job to the node that did it, and ``finished``, a
  `Counter`.

Part-way through, the node that leads the queue's group leaves (as if it
were shut down); the others elect a new leader and go on. At the end the
program checks that every job was done exactly once and the ledger only
ever saw growing tokens. It stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from typing import Any

from .. import ConsensusConfig, Network
from ..collections import Counter, Lock, Map, Queue
from ..exceptions import CommandError, QueryError

# Quick timings so that the failover shows within a second or two, and a
# majority quorum (2 of 3), which the lock needs for its guarantees.
CONSENSUS = ConsensusConfig(
    heartbeat_interval=0.1,
    heartbeat_jitter=0.02,
    election_timeout=0.6,
    election_timeout_jitter=0.2,
    bootstrap_delay=0.2,
    min_quorum=2,
)


class FencedLedger:
    """An external store that accepts a write only with a fencing token at
    least as large as any it has seen: a holder that lost its lease without
    knowing it cannot overwrite a newer holder's work."""

    def __init__(self) -> None:
        self.tokens: list[int] = []
        self.refused = 0

    def write(self, token: int, line: str) -> bool:
        if self.tokens and token < self.tokens[-1]:
            self.refused += 1
            return False
        self.tokens.append(token)
        return True


class Node:
    """One member: its network and its handles on the four collections."""

    def __init__(self, name: str, net: Network) -> None:
        self.name = name
        self.net = net
        self.jobs = Queue[int].writer(net, "jobs", consensus=CONSENSUS)
        self.ledger = Lock.writer(net, "ledger", consensus=CONSENSUS)
        self.done = Map[str, str].writer(net, "done", consensus=CONSENSUS)
        self.finished = Counter.writer(net, "finished", consensus=CONSENSUS)
        self.stopped = False

    def handles(self) -> list[Any]:
        return [self.jobs, self.ledger, self.done, self.finished]


async def _formed(nodes: list[Node]) -> None:
    for node in nodes:
        for handle in node.handles():
            await handle.group.when().leader_elected()


async def _work(node: Node, ledger: FencedLedger, total: int, say: Callable[[str], None]) -> None:
    rng = random.Random(node.name)
    while not node.stopped and node.finished.value < total:
        try:
            job = await node.jobs.get()
        except CommandError as error:  # offline during the failover: try again
            say(f"{node.name}: queue unavailable ({type(error).__name__}), retrying")
            await asyncio.sleep(0.2)
            continue
        if job is None:
            await asyncio.sleep(0.05)
            continue
        await asyncio.sleep(rng.uniform(0.02, 0.1))  # the work itself
        async with node.ledger.acquire("ledger", ttl=2.0, timeout=30) as lease:
            accepted = ledger.write(lease.token, f"job {job} by {node.name}")
            await node.done.insert(f"job-{job}", node.name)
            await node.finished.add(1)
        say(
            f"{node.name}: job {job:3d} done, ledger token {lease.token:3d}"
            f"{'' if accepted else ' (REFUSED: stale token)'}"
        )


async def run(jobs: int = 24, say: Callable[[str], None] = print) -> bool:
    """Runs the scenario; whether every check passed."""
    async with contextlib.AsyncExitStack() as stack:
        nets: list[Network] = []
        for _ in range(3):
            builder = Network.builder("mosaik-jobs-example").with_gossip_interval(0.2)
            if nets:
                builder = builder.with_bootstrap([nets[-1].local.addr])
            net = await builder.build()
            stack.push_async_callback(net.close)
            nets.append(net)
        nodes = [Node(f"node-{i + 1}", net) for i, net in enumerate(nets)]
        say("three nodes start; waiting for the four groups to form")
        await asyncio.wait_for(_formed(nodes), 20)
        for job in range(1, jobs + 1):
            await nodes[0].jobs.put(job)
        say(f"node-1 put {jobs} jobs on the queue")
        ledger = FencedLedger()
        started = time.monotonic()
        workers = [asyncio.ensure_future(_work(n, ledger, jobs, say)) for n in nodes]
        counter = nodes[0].finished
        while counter.value < jobs // 3:
            await counter.when().advanced()
        leaving = next((n for n in nodes if n.jobs.group.is_leader()), nodes[0])
        say(f"--- {leaving.name} leads the queue: it finishes its job and leaves ---")
        leaving.stopped = True
        await asyncio.wait_for(workers[nodes.index(leaving)], 30)
        for handle in leaving.handles():
            with contextlib.suppress(CommandError, QueryError):
                await handle.leave()
        rest = [n for n in nodes if n is not leaving]
        await asyncio.wait_for(asyncio.gather(*workers, return_exceptions=True), 60)
        survivor = rest[0]
        await survivor.done.barrier()
        done = dict(survivor.done.items())
        say(f"--- {jobs} jobs in {time.monotonic() - started:.1f} s ---")
        for node in nodes:
            say(f"{node.name}: {sum(1 for who in done.values() if who == node.name)} jobs")
        once = len(done) == jobs == survivor.finished.value
        growing = ledger.refused == 0 and ledger.tokens == sorted(set(ledger.tokens))
        say(f"every job done exactly once: {once}; ledger tokens only grew: {growing}")
        return once and growing


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mosaik.examples.jobs", description=__doc__)
    parser.add_argument("--jobs", type=int, default=24, help="how many jobs (default 24)")
    args = parser.parse_args(argv)
    ok = asyncio.run(run(args.jobs))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
