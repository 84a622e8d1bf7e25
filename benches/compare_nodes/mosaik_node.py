"""One mosaik node of the comparison benchmark, driven over stdin/stdout.

Prints ``ADDR <endpoint-addr>``, then answers one line per command (see
``benches/README.md`` for the protocol). Times are ``time.monotonic()``,
which every process on the machine shares, so the driver can compare them.

``--workload`` picks what the node holds and what a command is: ``counter``
(default) a user `StateMachine` counter, ``execute(1)``; ``map`` a
`mosaik.collections.Map`, ``insert(f"k{i}", i)`` with distinct keys;
``ctr`` a `mosaik.collections.Counter`, ``add(1)``. Either way the value the
node reports is the number of commands applied (the keys of the map).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter as Tally
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from report import CALL_LIMIT, say, seq_line, tally

import mosaik
import mosaik.collections

# The counter that tests use too (tests/machines.py).
sys.path.append(str(Path(__file__).resolve().parents[2] / "tests"))
from machines import Counter, SnapshotCounter

# The same timings as the PySyncObj nodes (see pysyncobj_node.py): heartbeats
# every 50 ms, election timeouts drawn from [0.4 s, 0.7 s).
CONSENSUS: dict[str, Any] = {
    "heartbeat_interval": 0.05,
    "heartbeat_jitter": 0.01,
    "max_missed_heartbeats": 10,
    "election_timeout": 0.4,
    "election_timeout_jitter": 0.3,
    "bootstrap_delay": 0.1,
    "forward_timeout": 1.0,
    "query_timeout": 1.0,
}


Group = mosaik.Group[Any]
WORKLOADS = ("counter", "map", "ctr")


class Target:
    """The group a node holds, its applied count and its one write."""

    def __init__(
        self, group: Group, value: Callable[[], int], write: Callable[[int], Awaitable[Any]]
    ) -> None:
        self.group = group
        #: Commands applied here (the counter, or the map's keys: all distinct).
        self.value = value
        #: Command number ``i`` (a map key ``f"k{i}"``; the counters ignore ``i``).
        self.write = write


def open_target(
    net: mosaik.Network,
    workload: str,
    key: mosaik.GroupKey,
    storage: mosaik.DiskLogStore | mosaik.InMemoryLogStore,
    snapshots: bool = False,
    min_quorum: int = 2,
) -> Target:
    consensus = mosaik.ConsensusConfig(**{**CONSENSUS, "min_quorum": min_quorum})
    if workload == "map":
        m = mosaik.collections.Map[str, int].writer(
            net, "bench", key=key, consensus=consensus, storage=storage
        )
        return Target(m.group, m.__len__, lambda i: m.insert(f"k{i}", i))
    if workload == "ctr":
        c = mosaik.collections.Counter.writer(
            net, "bench", key=key, consensus=consensus, storage=storage
        )
        return Target(c.group, lambda: c.value, lambda i: c.add(1))
    group: mosaik.Group[Counter] = (
        net.groups()
        .with_key(key)
        .with_state_machine(
            SnapshotCounter(snapshot_every=mosaik.StateMachine.snapshot_every)
            if snapshots
            else Counter()
        )
        .with_consensus_config(consensus)
        .with_log_storage(storage)
        .join()
    )
    return Target(group, lambda: group.machine.value, lambda i: group.execute(1))


async def one_at_a_time(
    call: Callable[[int], Awaitable[Any]],
    errors: tuple[type[Exception], ...],
    seconds: float,
    limit: int,
) -> str:
    """``call(n)`` for n = 0, 1, ... one at a time, each timed (a call that
    raises one of ``errors`` or takes over `CALL_LIMIT` counts as failed):
    the `seq` answer."""
    samples: list[float] = []
    failed = 0
    start = time.monotonic()
    end = start + seconds
    while time.monotonic() < end and len(samples) + failed < limit:
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(CALL_LIMIT):
                await call(len(samples) + failed)
        except (*errors, TimeoutError):
            failed += 1
            continue
        samples.append(time.perf_counter() - t0)
    return seq_line(samples, failed, time.monotonic() - start)


async def sequential(target: Target, seconds: float, limit: int) -> str:
    base = target.value()
    write = target.write
    return await one_at_a_time(lambda n: write(base + n), (mosaik.CommandError,), seconds, limit)


async def pipelined(target: Target, window: int, total: int, seconds: float, drain: float) -> str:
    """``window`` clients, each running one write (``execute``) at a time."""
    issued = acked = failed = 0
    reasons: Tally[str] = Tally()
    write = target.write
    # Every command before this one was applied here: new keys go on from it.
    base = target.value()

    async def client() -> None:
        nonlocal issued, acked, failed, last
        while issued < total and time.monotonic() < stop:
            i = base + issued
            issued += 1
            try:
                await write(i)
            except mosaik.CommandError as exc:
                failed += 1
                reasons[type(exc).__name__] += 1
                continue
            acked += 1
            last = time.monotonic()

    clients = [asyncio.ensure_future(client()) for _ in range(window)]
    # The clock starts once the clients exist and before any has run: making
    # W asyncio tasks is the client program's cost (about 1.5 s for 200,000
    # on a 2-core VM, most of it the garbage collector walking them), not the
    # system's, and PySyncObj's driver has no such step.
    last = start = time.monotonic()
    stop = start + seconds
    _done, pending = await asyncio.wait(clients, timeout=seconds + drain)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    lost = issued - acked - failed
    return f"PIPE {acked} {failed} {lost} {start:.6f} {last:.6f} {tally(reasons)}"


async def strong_sequential(group: Group, seconds: float, limit: int) -> str:
    """Strong queries one at a time, answered on this node."""

    def ask(_: int) -> Awaitable[Any]:
        return group.query("value", mosaik.Consistency.STRONG)

    return await one_at_a_time(ask, (mosaik.QueryError,), seconds, limit)


async def strong_pipelined(group: Group, window: int, total: int, seconds: float) -> str:
    """``window`` clients, each running one strong query at a time:
    ``QPIPE answered failed seconds``."""
    issued = answered = failed = 0

    async def client() -> None:
        nonlocal issued, answered, failed
        while issued < total and time.monotonic() < stop:
            issued += 1
            try:
                await group.query("value", mosaik.Consistency.STRONG)
            except mosaik.QueryError:
                failed += 1
                continue
            answered += 1

    clients = [asyncio.ensure_future(client()) for _ in range(window)]
    start = time.monotonic()  # once the clients exist, as in `pipelined`
    stop = start + seconds
    await asyncio.wait(clients)
    return f"QPIPE {answered} {failed} {time.monotonic() - start:.6f}"


async def batched(group: Group, size: int, batches: int, seconds: float) -> str:
    acked = failed = 0
    reasons: Tally[str] = Tally()
    last = start = time.monotonic()
    for _ in range(batches):
        if time.monotonic() > start + seconds:
            break
        try:
            async with asyncio.timeout(CALL_LIMIT):
                await group.execute_many([1] * size)
        except (mosaik.CommandError, TimeoutError) as exc:
            failed += size
            reasons[type(exc).__name__] += size
            continue
        acked += size
        last = time.monotonic()
    return f"PIPE {acked} {failed} 0 {start:.6f} {last:.6f} {tally(reasons)}"


async def wait_value(target: Target, want: int, timeout: float, idle: float) -> str:
    """Until the counter reaches ``want`` or stops moving for ``idle`` seconds;
    reports the value and when it last changed."""
    now = changed = time.monotonic()
    end = now + timeout
    read = target.value
    value = read()
    while value < want and now < end and now - changed < idle:
        await asyncio.sleep(0.001)
        now = time.monotonic()
        if read() != value:
            value, changed = read(), now
    return f"VALUE {value} {changed:.6f}"


async def probe(target: Target, period: float, seconds: float) -> str:
    """A command every ``period`` seconds; reports (submitted, acked) times."""
    pairs: list[tuple[float, float]] = []
    failed = 0
    tasks: set[asyncio.Task[None]] = set()
    # The counters only (failover runs on them): a map key would collide
    # with the dead leader's.
    base = target.value()

    async def one() -> None:
        nonlocal failed
        sent = time.monotonic()
        try:
            async with asyncio.timeout(2.0):
                await target.write(base + len(pairs) + failed)
        except (mosaik.CommandError, TimeoutError):
            failed += 1
            return
        pairs.append((sent, time.monotonic()))

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if len(tasks) < 200:
            task = asyncio.ensure_future(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        await asyncio.sleep(period)
    if tasks:
        await asyncio.wait(tasks, timeout=3.0)
    for task in list(tasks):
        task.cancel()
    body = ",".join(f"{s:.6f}:{a:.6f}" for s, a in pairs)
    return f"PROBE {len(pairs)} {failed} {body or '-'}"


async def answer(target: Target, words: list[str]) -> str:
    verb, args = words[0], words[1:]
    group = target.group
    if verb == "status":
        known = int(group.leader() is not None)
        bonds = len(group.bonds())
        return f"STATUS {int(group.is_leader())} {known} {target.value()} {bonds}"
    if verb == "seq":
        return await sequential(target, float(args[0]), int(args[1]))
    if verb == "pipe":
        return await pipelined(target, int(args[0]), int(args[1]), float(args[2]), float(args[3]))
    if verb == "qseq":
        return await strong_sequential(group, float(args[0]), int(args[1]))
    if verb == "qpipe":
        return await strong_pipelined(group, int(args[0]), int(args[1]), float(args[2]))
    if verb == "many":
        return await batched(group, int(args[0]), int(args[1]), float(args[2]))
    if verb == "wait":
        return await wait_value(target, int(args[0]), float(args[1]), float(args[2]))
    if verb == "probe":
        return await probe(target, float(args[0]), float(args[1]))
    return f"ERROR unknown command {' '.join(words)!r}"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--key", required=True, help="group key, 64 hex chars")
    parser.add_argument("--bootstrap", action="append", default=[])
    parser.add_argument("--data-dir", help="keep the log in a DiskLogStore here (fsync)")
    parser.add_argument("--workload", choices=WORKLOADS, default="counter")
    parser.add_argument(
        "--min-quorum", type=int, default=2, help="the group's min_quorum (a majority of its size)"
    )
    parser.add_argument(
        "--snapshots",
        action="store_true",
        help="the counter snapshots every 100,000 entries (mosaik's default interval)",
    )
    args = parser.parse_args()
    storage: mosaik.DiskLogStore | mosaik.InMemoryLogStore = mosaik.InMemoryLogStore()
    if args.data_dir:
        storage = mosaik.DiskLogStore(args.data_dir)

    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    builder = (
        mosaik.Network.builder("compare-bench")
        .with_gossip_interval(0.2)
        .with_bootstrap(args.bootstrap)
    )
    async with await builder.build() as net:
        key = mosaik.GroupKey.from_hex(args.key)
        target = open_target(net, args.workload, key, storage, args.snapshots, args.min_quorum)
        say(f"ADDR {net.local.addr}")
        while True:
            line = (await stdin.readline()).decode()
            words = line.split()
            if not line or (words and words[0] == "quit"):
                return
            if words:
                say(await answer(target, words))


if __name__ == "__main__":
    asyncio.run(main())
