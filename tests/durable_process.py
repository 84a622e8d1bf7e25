"""A group member keeping its log on disk, in its own process, driven over stdin.

The replicated machine is a ledger of command ids: it records every id it
applies, counts ids applied a second time, and snapshots itself (msgpack)
every ``--snapshot-every`` entries, so the log is compacted and a restart
restores a snapshot before replaying the rest.

Prints ``ADDR <endpoint-addr>`` once the group is joined, then answers one
line per command read on stdin:

- ``load COUNT INFLIGHT SECONDS`` -> ``LOADING``; a loader then executes up to
  COUNT commands with unique ids (at most INFLIGHT at once, for at most
  SECONDS), printing ``ACK <id>`` after each ``execute`` returned. It never
  retries an id: a failed command's id is given up (its fate is unknown).
- ``pause``  -> ``PAUSED <acked> <failed>`` once the loader stopped and
  nothing it sent is in flight.
- ``status`` -> ``STATUS <leader-hex|none> <is_leader 0|1> <committed> <applied>
  <bonds> <ids> <duplicates> <disorder> <digest> <restores>``
- ``dump PATH`` -> ``DUMPED <ids>`` after writing the sorted ids as JSON to PATH.
- ``poison DEPTH`` (with ``--raw-codec`` only) -> ``POISONED <index>`` once
  ``DEPTH`` nested tuples, made by hand, are committed at that index.
- ``quit``   -> closes the network and exits.

Warnings of the ``mosaik`` logger (the torn-tail cut among them) go to stderr.

With ``--raw-codec`` the machine is a `RawLedger`: the same signature, so the
same group, but commands that are bytes reach the log as they are.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sys
from pathlib import Path
from typing import Any

import msgpack
from msgpack_bytes import tuples_bytes
from process_io import commands, member_arguments, network_builder, stdin_reader
from timings import FAST

import mosaik

# Every call is bounded, so that a hang shows up as an answer instead of a
# silent test timeout.
CALL_LIMIT = 8.0
DIGEST_MOD = 1 << 256


def id_hash(command_id: str) -> int:
    return int.from_bytes(hashlib.sha256(command_id.encode()).digest(), "big")


class Ledger(mosaik.StateMachine):
    """Every command id applied; ids applied twice; indices out of order."""

    snapshot_every = 300
    restores = 0  # snapshots restored in this process

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.seen: set[str] = set()
        self.duplicates = 0
        self.disorder = 0  # a command applied at an index not after the previous one
        self.last_index = 0
        self.digest = 0  # sum of the ids' hashes: the same for the same set

    def signature(self) -> str:
        return "durable_ledger_v1"

    def apply(self, command: Any, ctx: Any) -> None:
        index = ctx.log_position.index
        if index <= self.last_index:
            self.disorder += 1
        self.last_index = index
        command_id = command["id"]
        if command_id in self.seen:
            self.duplicates += 1
            return
        self.seen.add(command_id)
        self.digest = (self.digest + id_hash(command_id)) % DIGEST_MOD

    def query(self, query: Any) -> Any:
        if query == "ids":
            return sorted(self.seen)
        return [len(self.seen), self.duplicates, self.disorder, f"{self.digest:064x}"]

    def snapshot(self) -> bytes:
        state = {
            "seen": sorted(self.seen),
            "duplicates": self.duplicates,
            "disorder": self.disorder,
            "last_index": self.last_index,
        }
        return bytes(msgpack.packb(state))

    def restore(self, data: bytes) -> None:
        state = msgpack.unpackb(data)
        self.reset()
        self.seen = set(state["seen"])
        self.duplicates = state["duplicates"]
        self.disorder = state["disorder"]
        self.last_index = state["last_index"]
        self.digest = sum(id_hash(i) for i in self.seen) % DIGEST_MOD
        Ledger.restores += 1


class RawCodec:
    """`MSGPACK`, except that bytes are sent as they are (not as msgpack)."""

    def encode(self, obj: Any) -> bytes:
        return obj if isinstance(obj, bytes) else mosaik.codec.MSGPACK.encode(obj)

    def decode(self, data: bytes) -> Any:
        return mosaik.codec.MSGPACK.decode(data)


class RawLedger(Ledger):
    codec = RawCodec()


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Loader:
    """Executes commands with unique ids; prints ``ACK <id>`` for each that returned."""

    def __init__(self, group: mosaik.Group[Ledger], prefix: str) -> None:
        self.group = group
        self.prefix = prefix
        self.next = 0
        self.acked = 0
        self.failed = 0
        self.task: asyncio.Task[None] | None = None
        self.stopping = False

    def start(self, count: int, inflight: int, seconds: float) -> None:
        self.stopping = False
        self.task = asyncio.create_task(self._run(count, inflight, seconds))

    async def pause(self) -> None:
        self.stopping = True
        if self.task is not None:
            await self.task
            self.task = None

    async def _run(self, count: int, inflight: int, seconds: float) -> None:
        deadline = asyncio.get_running_loop().time() + seconds
        budget = [count]

        async def client() -> None:
            loop = asyncio.get_running_loop()
            while not self.stopping and budget[0] > 0 and loop.time() < deadline:
                budget[0] -= 1
                command_id = f"{self.prefix}.{self.next}"
                self.next += 1
                if await self._execute(command_id):
                    say(f"ACK {command_id}")
                    self.acked += 1
                else:
                    self.failed += 1
                    await asyncio.sleep(0.05)  # no leader yet: do not spin

        await asyncio.gather(*(client() for _ in range(inflight)))

    async def _execute(self, command_id: str) -> bool:
        try:
            await asyncio.wait_for(self.group.execute({"id": command_id}), CALL_LIMIT)
        except (mosaik.CommandOffline, mosaik.CommandUnknown, TimeoutError):
            return False
        return True


async def answer(group: mosaik.Group[Ledger], loader: Loader, words: list[str]) -> str:
    verb = words[0]
    if verb == "load":
        loader.start(int(words[1]), int(words[2]), float(words[3]))
        return "LOADING"
    if verb == "pause":
        await asyncio.wait_for(loader.pause(), CALL_LIMIT + 2.0)
        return f"PAUSED {loader.acked} {loader.failed}"
    if verb == "status":
        leader = group.leader()
        leader_hex = bytes(leader).hex() if leader is not None else "none"
        res = await group.query("stats")
        ids, duplicates, disorder, digest = res.result
        return (
            f"STATUS {leader_hex} {int(group.is_leader())} {group.committed()} "
            f"{res.at_position} {len(group.bonds())} {ids} {duplicates} {disorder} {digest} "
            f"{Ledger.restores}"
        )
    if verb == "poison" and isinstance(group.machine, RawLedger):
        index = await asyncio.wait_for(group.execute(tuples_bytes(int(words[1]))), CALL_LIMIT)
        return f"POISONED {index}"
    if verb == "dump":
        res = await group.query("ids")
        await asyncio.to_thread(Path(words[1]).write_text, json.dumps(res.result))
        return f"DUMPED {len(res.result)}"
    return f"ERROR unknown command {' '.join(words)!r}"


async def main() -> None:
    parser = member_arguments()
    parser.add_argument("--dir", required=True, help="the log store's directory")
    parser.add_argument("--prefix", required=True, help="prefix of this run's command ids")
    parser.add_argument("--segment-bytes", type=int, default=64 * 1024)
    parser.add_argument("--snapshot-every", type=int, default=300)
    parser.add_argument("--raw-codec", action="store_true", help="run a RawLedger")
    args = parser.parse_args()
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    Ledger.snapshot_every = args.snapshot_every

    stdin = await stdin_reader()
    builder = network_builder("durable-test", args.secret, args.bootstrap)
    config = mosaik.ConsensusConfig(**FAST, min_quorum=2)
    async with await builder.build() as net:
        group = (
            net.groups()
            .with_key(mosaik.GroupKey.from_hex(args.key))
            .with_state_machine(RawLedger() if args.raw_codec else Ledger())
            .with_consensus_config(config)
            .with_log_storage(mosaik.DiskLogStore(args.dir, segment_bytes=args.segment_bytes))
            .join()
        )
        loader = Loader(group, args.prefix)
        say(f"ADDR {net.local.addr}")
        try:
            async for words in commands(stdin):
                say(await answer(group, loader, words))
        finally:
            await loader.pause()


if __name__ == "__main__":
    asyncio.run(main())
