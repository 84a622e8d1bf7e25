"""Where one command's time goes: a sequential `execute` split into the part
before the state machine sees it (the event loop, the consensus worker,
replication, the store's sync, commit, the hand-over to the apply pool) and the part after
(back from the apply pool to the caller's event loop), per command.

The machine stamps ``time.perf_counter_ns()`` when its ``apply`` runs; the
caller stamps before ``execute`` and after it returns. One process: a
single-node group (in memory, then on disk: the difference is the store's
writes and its sync), and a three-member group on three networks (the caller
on the leader). Writes benches/results/latency_stages.md.

Usage: python benches/latency_stages.py [--smoke] [--commands N]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from compare import machine

import mosaik

RESULTS = Path(__file__).resolve().parent / "results"
WAIT = 30.0


class Stamped(mosaik.StateMachine):
    """Counts, and remembers when it applied the last command."""

    def __init__(self) -> None:
        self.total = 0
        self.applied_at = 0

    def signature(self) -> str:
        return "bench_latency_stages"

    def apply(self, command: Any, ctx: Any) -> None:
        self.applied_at = time.perf_counter_ns()
        self.total += command

    def query(self, query: Any) -> int:
        return self.total


async def measure(group: mosaik.Group[Stamped], commands: int) -> list[tuple[int, int]]:
    """(submit to apply, apply to resumed) in ns for each command."""
    for _ in range(min(1000, commands)):
        await group.execute(1)
    rows = []
    for _ in range(commands):
        started = time.perf_counter_ns()
        await group.execute(1)
        resumed = time.perf_counter_ns()
        applied = group.machine.applied_at
        rows.append((applied - started, resumed - applied))
    return rows


async def one_node(
    commands: int, storage: mosaik.InMemoryLogStore | mosaik.DiskLogStore
) -> list[tuple[int, int]]:
    async with await mosaik.Network.new("latency-stages") as net:
        builder = net.groups().with_key(mosaik.GroupKey.generate()).with_state_machine(Stamped())
        group = builder.with_log_storage(storage).join()
        await asyncio.wait_for(group.when().is_leader(), WAIT)
        return await measure(group, commands)


async def three_nodes(commands: int) -> list[tuple[int, int]]:
    key = mosaik.GroupKey.generate()
    async with AsyncExitStack() as stack:
        nets: list[mosaik.Network] = []
        for i in range(3):
            builder = mosaik.Network.builder("latency-stages")
            if i:
                builder = builder.with_bootstrap([nets[0].local.addr])
            net = await builder.build()
            stack.push_async_callback(net.close)
            nets.append(net)
        groups = [n.groups().with_key(key).with_state_machine(Stamped()).join() for n in nets]
        deadline = time.monotonic() + WAIT
        while not any(g.is_leader() for g in groups) or any(len(g.bonds()) < 2 for g in groups):
            if time.monotonic() > deadline:
                raise SystemExit("the three members did not form a group in time")
            await asyncio.sleep(0.05)
        leader = next(g for g in groups if g.is_leader())
        return await measure(leader, commands)


def quantile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] / 1000


def table(runs: list[tuple[str, list[tuple[int, int]]]]) -> list[str]:
    lines = [
        "| group | stage | p50 | p90 | p99 |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for name, rows in runs:
        stages = [
            ("submit -> apply", [r[0] for r in rows]),
            ("apply -> resumed", [r[1] for r in rows]),
            ("whole execute", [r[0] + r[1] for r in rows]),
        ]
        for stage, values in stages:
            p50, p90, p99 = (quantile(values, q) for q in (0.5, 0.9, 0.99))
            lines.append(f"| {name} | {stage} | {p50:,.1f} us | {p90:,.1f} us | {p99:,.1f} us |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="200 commands; no file")
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    commands = 200 if args.smoke else args.commands
    with tempfile.TemporaryDirectory(prefix="mosaik-latency-") as disk:
        durable = asyncio.run(one_node(commands, mosaik.DiskLogStore(disk)))
    runs = [
        ("one node", asyncio.run(one_node(commands, mosaik.InMemoryLogStore()))),
        ("one node, DiskLogStore", durable),
        ("three members, one process", asyncio.run(three_nodes(commands))),
    ]
    lines = [
        "# Where a sequential execute spends its time",
        "",
        f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {commands:,} sequential "
        "commands per group after a warm-up, one process. `submit -> apply`: from calling "
        "`execute` to the machine's `apply` running (event loop, consensus worker, "
        "replication and commit, hand-over to the apply pool); `apply -> resumed`: from "
        "there to `execute` returning on the caller's event loop.",
        "",
        *machine(),
        "",
        *table(runs),
    ]
    text = "\n".join(lines) + "\n"
    if not args.smoke:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "latency_stages.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
