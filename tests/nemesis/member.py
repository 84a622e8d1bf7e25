"""One member of a nemesis cluster: a mosaik Network and Group running a journal.

Run by the driver inside the test's network namespace (``ip netns exec NS
python member.py ...``), bound to its own 127.0.0.N. The replicated machine is
an append-only journal: ``apply`` appends ``[value, log index]`` (the index the
entry was committed at, ``ctx.log_position.index``), a query returns the whole
journal. Duplicates are kept, so that a value applied twice shows in a read.

Prints ``ADDR <endpoint-addr>`` once the group is joined, then answers one line
per command read on stdin. Commands are handled concurrently (one task each),
so every answer carries the request id it answers:

- ``APPEND <op> <value>`` -> ``OK <op> <index>`` | ``OFFLINE <op>`` (CommandOffline:
  the promise that it never commits) | ``UNKNOWN <op>`` (timeout, cancellation,
  ``CommandUnknown``: it may or may not commit) | ``ERROR <op> <text>``
- ``READ <op>`` (a strong query; weak with ``--weak-reads``, a harness
  self-check) -> ``READ <op> <v:i,v:i,...>`` (``-`` when empty) | ``QOFFLINE <op>``
  | ``QUNKNOWN <op>`` (timeout) | ``ERROR <op> <text>``
- ``STATUS <op>`` -> ``STATUS <op> <leader-hex|none> <term> <last-index> <committed>``
- ``quit`` or the end of stdin -> closes the network and exits.

Every call is bounded by ``--call-limit`` seconds. Warnings of the ``mosaik``
logger go to stderr (the driver keeps them in a file per member).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

import mosaik

# The timings of tests/timings.py (FAST), which the multi-process tests use.
FAST: dict[str, Any] = {
    "heartbeat_interval": 0.05,
    "heartbeat_jitter": 0.01,
    "max_missed_heartbeats": 10,
    "election_timeout": 0.3,
    "election_timeout_jitter": 0.1,
    "bootstrap_delay": 0.1,
    "forward_timeout": 1.0,
    "query_timeout": 1.0,
}

NETWORK = "mosaik-nemesis"
SIGNATURE = "nemesis_journal_v1"

# Not every build has it; where it exists it means "sent, outcome unknown".
COMMAND_UNKNOWN: tuple[type[BaseException], ...] = tuple(
    t for t in (getattr(mosaik, "CommandUnknown", None),) if isinstance(t, type)
)


class Journal(mosaik.StateMachine):
    """An append-only list of ``[value, index]``."""

    def __init__(self) -> None:
        self.entries: list[list[int]] = []

    def reset(self) -> None:
        self.entries = []

    def signature(self) -> str:
        return SIGNATURE

    def apply(self, command: Any, ctx: Any) -> None:
        self.entries.append([int(command), ctx.log_position.index])

    def query(self, query: Any) -> Any:
        return list(self.entries)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".replace("\n", " ")


async def append(group: mosaik.Group[Journal], op: str, value: int, limit: float) -> str:
    try:
        index = await asyncio.wait_for(group.execute(value), limit)
    except TimeoutError:
        return f"UNKNOWN {op}"
    except Exception as exc:
        # CommandUnknown first: were it ever a subclass of CommandOffline, an
        # unknown outcome must still not be reported as the offline promise.
        if COMMAND_UNKNOWN and isinstance(exc, COMMAND_UNKNOWN):
            return f"UNKNOWN {op}"
        if isinstance(exc, mosaik.CommandOffline):
            return f"OFFLINE {op}"
        return f"ERROR {op} {one_line(exc)}"
    return f"OK {op} {index}"


async def read(group: mosaik.Group[Journal], op: str, limit: float, weak: bool) -> str:
    consistency = mosaik.Consistency.WEAK if weak else mosaik.Consistency.STRONG
    try:
        res = await asyncio.wait_for(group.query(None, consistency), limit)
    except mosaik.QueryOffline:
        return f"QOFFLINE {op}"
    except TimeoutError:
        return f"QUNKNOWN {op}"
    except Exception as exc:
        return f"ERROR {op} {one_line(exc)}"
    items = ",".join(f"{v}:{i}" for v, i in res.result)
    return f"READ {op} {items or '-'}"


def status(group: mosaik.Group[Journal], op: str) -> str:
    leader = group.leader()
    leader_hex = bytes(leader).hex() if leader is not None else "none"
    pos = group.log_position()
    return f"STATUS {op} {leader_hex} {pos.term} {pos.index} {group.committed()}"


async def handle(group: mosaik.Group[Journal], words: list[str], limit: float, weak: bool) -> str:
    verb = words[0]
    op = words[1] if len(words) > 1 else "-"
    try:
        if verb == "APPEND" and len(words) == 3:
            return await append(group, op, int(words[2]), limit)
        if verb == "READ" and len(words) == 2:
            return await read(group, op, limit, weak)
        if verb == "STATUS" and len(words) == 2:
            return status(group, op)
    except Exception as exc:  # reported to the driver, which records it
        return f"ERROR {op} {one_line(exc)}"
    return f"ERROR {op} unknown command {' '.join(words)!r}"


async def serve(group: mosaik.Group[Journal], limit: float, weak: bool) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    tasks: set[asyncio.Task[None]] = set()

    async def run(words: list[str]) -> None:
        say(await handle(group, words, limit, weak))

    while line := (await reader.readline()).decode():
        words = line.split()
        if words == ["quit"]:
            break
        if words:
            task = asyncio.create_task(run(words))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    for task in list(tasks):
        task.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key", required=True, help="group key, 64 hex chars")
    parser.add_argument("--secret-file", required=True, help="file holding the node secret")
    parser.add_argument("--listen", required=True, help="HOST:PORT to bind (127.0.0.N:port)")
    parser.add_argument("--bootstrap", action="append", default=[])
    parser.add_argument("--min-quorum", type=int, required=True)
    parser.add_argument("--store", choices=("memory", "disk"), default="memory")
    parser.add_argument("--dir", help="the DiskLogStore directory (--store disk)")
    parser.add_argument("--call-limit", type=float, default=3.0)
    parser.add_argument(
        "--weak-reads", action="store_true", help="harness self-check: READ is a weak query"
    )
    args = parser.parse_args()
    if args.store == "disk" and not args.dir:
        parser.error("--store disk needs --dir")
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    secret = Path(args.secret_file).read_text().strip()
    asyncio.run(run(args, secret))


async def run(args: argparse.Namespace, secret: str) -> None:
    config = mosaik.ConsensusConfig(**FAST, min_quorum=args.min_quorum)
    builder = (
        mosaik.Network.builder(NETWORK)
        .with_gossip_interval(0.2)
        .with_secret_key(secret)
        .with_addresses([args.listen])
        .with_bootstrap(args.bootstrap)
    )
    storage: mosaik.InMemoryLogStore | mosaik.DiskLogStore = mosaik.InMemoryLogStore()
    if args.store == "disk":
        storage = mosaik.DiskLogStore(args.dir)
    async with await builder.build() as net:
        group = (
            net.groups()
            .with_key(mosaik.GroupKey.from_hex(args.key))
            .with_state_machine(Journal())
            .with_consensus_config(config)
            .with_log_storage(storage)
            .join()
        )
        say(f"ADDR {net.local.addr}")
        await serve(group, args.call_limit, args.weak_reads)


if __name__ == "__main__":
    main()
