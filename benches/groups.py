"""Many groups on three nodes: threads, idle CPU, memory and formation time
as the number of groups grows.

Three node processes on 127.0.0.1 each join the same ``G`` groups (a
counter machine each, default timings), for G in ``--groups`` (default 1,
10, 100, 300, 1000). Once every group on every node knows its leader, each node
measures, while idle for ``--idle`` seconds: its threads, its CPU time (as
% of one core) and its resident memory; then one command is executed in
every group. Memory per group is the growth of RSS over the one-group run,
divided by the extra groups. Writes benches/results/groups.md.

Usage: python benches/groups.py [--smoke] [--groups 1,10,100] [--idle S]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from compare import machine

import mosaik
from mosaik import GroupKey

RESULTS = Path(__file__).resolve().parent / "results"
NODES = 3
# Each run's processes are stopped after this many seconds, whatever happens.
RUN_LIMIT = 600.0


class Tally(mosaik.StateMachine):
    def __init__(self) -> None:
        self.total = 0

    def signature(self) -> str:
        return "bench_groups_tally"

    def apply(self, command: Any, ctx: Any) -> None:
        self.total += command

    def query(self, query: Any) -> int:
        return self.total


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def say(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


async def node(count: int, seed: str, bootstrap: str | None, idle: float) -> None:
    """One node: joins ``count`` groups, reports its address, waits for
    every leader, measures while idle, executes once in every group."""
    builder = mosaik.Network.builder("bench-groups")
    if bootstrap:
        builder = builder.with_bootstrap([bootstrap])
    net = await builder.build()
    started = time.monotonic()
    keys = [
        GroupKey.from_hex(hashlib.sha256(f"{seed}-{i}".encode()).hexdigest()) for i in range(count)
    ]
    groups = [net.groups().with_key(k).with_state_machine(Tally()).join() for k in keys]
    say({"address": str(net.local.addr)})
    deadline = time.monotonic() + RUN_LIMIT / 2
    while not all(g.leader() is not None and len(g.bonds()) == NODES - 1 for g in groups):
        if time.monotonic() > deadline:
            raise SystemExit("the groups did not form in time")
        await asyncio.sleep(0.1)
    formed = time.monotonic() - started
    # Idle: nothing but heartbeats and ticks.
    cpu, wall = cpu_seconds(), time.monotonic()
    await asyncio.sleep(idle)
    idle_cpu = (cpu_seconds() - cpu) / (time.monotonic() - wall) * 100
    threads = len(os.listdir("/proc/self/task"))
    rss = rss_bytes()
    leading = [g for g in groups if g.is_leader()]
    # Every leader executes at once: a node short of CPU may lose a lead
    # meanwhile, and the command's honest answer is then an error.
    outcomes = await asyncio.gather(*(g.execute(1) for g in leading), return_exceptions=True)
    say(
        {
            "formed_s": formed,
            "idle_cpu_pct": idle_cpu,
            "threads": threads,
            "rss": rss,
            "leaders": len(leading),
            "unconfirmed": sum(isinstance(o, mosaik.CommandError) for o in outcomes),
        }
    )
    # Stay until the parent has every report: leaving earlier would start
    # elections on the others.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await net.close()


def start_node(count: int, seed: str, bootstrap: str | None, idle: float) -> subprocess.Popen[str]:
    args = [sys.executable, __file__, "--node", str(count), "--seed", seed, "--idle", str(idle)]
    if bootstrap:
        args += ["--bootstrap", bootstrap]
    return subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def read(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"a node ended early (exit {proc.wait(timeout=RUN_LIMIT)})")
    return dict(json.loads(line))


def run(count: int, idle: float) -> list[dict[str, Any]]:
    """The three nodes' reports for ``count`` groups."""
    seed = os.urandom(8).hex()
    procs: list[subprocess.Popen[str]] = []
    try:
        procs.append(start_node(count, seed, None, idle))
        first = read(procs[0])["address"]
        for _ in range(NODES - 1):
            procs.append(start_node(count, seed, first, idle))
            read(procs[-1])
        reports = [read(p) for p in procs]
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("done\n")
            p.stdin.flush()
        for p in procs:
            p.wait(timeout=60)
        return reports
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def report(rows: list[tuple[int, list[dict[str, Any]]]], idle: float) -> str:
    base = median([float(r["rss"]) for r in rows[0][1]])
    lines = [
        "# Many groups on three nodes",
        "",
        f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Three node processes on "
        "127.0.0.1, each joined to every group (a counter machine, default consensus timings). "
        f"Per node, the median of the three: threads, CPU while idle for {idle:g} s (% of one "
        "core), resident memory, and memory per group above the first group's run. "
        "Formation: from joining to every group on the node knowing its leader. Then every "
        "group's leader executes one command, all at once; unconfirmed: those answered "
        "`CommandUnknown` or `CommandOffline` (a lead lost meanwhile), of all three nodes.",
        "",
        *machine(),
        "",
        "| groups | threads per node | idle CPU per node | RSS per node | per group | formed in "
        "| unconfirmed |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for count, reports in rows:
        rss = median([float(r["rss"]) for r in reports])
        per_group = (
            "-" if count == rows[0][0] else f"{(rss - base) / (count - rows[0][0]) / 1024:,.0f} KB"
        )
        lines.append(
            f"| {count:,} | {median([r['threads'] for r in reports]):.0f} "
            f"| {median([r['idle_cpu_pct'] for r in reports]):.1f} % "
            f"| {rss / 2**20:,.0f} MiB | {per_group} "
            f"| {median([r['formed_s'] for r in reports]):.1f} s "
            f"| {sum(r['unconfirmed'] for r in reports)} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="1 and 3 groups, 1 s idle; no file")
    parser.add_argument("--groups", default="1,10,100,300,1000")
    parser.add_argument("--idle", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--node", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seed", help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.node is not None:
        asyncio.run(node(args.node, args.seed, args.bootstrap, args.idle))
        return
    counts = [1, 3] if args.smoke else [int(c) for c in args.groups.split(",")]
    idle = 1.0 if args.smoke else args.idle
    rows: list[tuple[int, list[dict[str, Any]]]] = []
    failed: list[int] = []
    for count in counts:
        try:
            reports = run(count, idle)
        except RuntimeError as error:
            print(f"{count} groups: {error}", flush=True)
            failed.append(count)
            break
        assert sum(r["leaders"] for r in reports) == count, reports
        rows.append((count, reports))
        print(report(rows, idle).splitlines()[-1], flush=True)
    text = report(rows, idle)
    for count in failed:
        text += (
            f"\n{count:,} groups: the groups did not all know a leader within "
            f"{RUN_LIMIT / 2:.0f} s on every node; no figures.\n"
        )
    if not args.smoke:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "groups.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
