"""Durability of a group whose three members keep their logs on disk, each in
its own process (``durable_process.py``, driven line by line over stdin).

Members are SIGKILLed under load and restarted with the same secret key and
directory; some restarts first damage the tail of the newest log segment the
way a crash in the middle of a write does. After every restart the load is
paused and all three must agree: every command whose ``execute`` returned is
applied on every node, no command is applied twice, and the ids applied are
the same everywhere.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from process_io import spawn_member

import mosaik
from conftest import bounded, eventually

DURABLE_NODE = Path(__file__).with_name("durable_process.py")

SEGMENT_BYTES = 64 * 1024
SNAPSHOT_EVERY = 300
FORMING = 15.0  # a process starts, finds the others, bonds and catches up
ANSWER = 12.0  # one command line answered (the node caps its own calls at 8 s)
SETTLING = 15.0  # after a pause: a leader elected (if it was killed), everyone caught up
# One load command per node: it stops by itself after this many commands or
# seconds, whichever comes first (the test pauses it long before).
LOAD = "load 3000 4 20"

TORN_TAIL = re.compile(r"ended in a partly written record: cut (\d+) bytes at byte (\d+)")


@dataclass(frozen=True)
class Status:
    leader: str | None
    is_leader: bool
    committed: int
    applied: int
    bonds: int
    ids: int
    duplicates: int
    disorder: int
    digest: str
    restores: int


class Node:
    """One member: its fixed identity and directory, and its current process."""

    def __init__(self, cluster: Cluster, name: str, flags: list[str]) -> None:
        self.cluster = cluster
        self.name = name
        self.flags = flags  # more arguments of durable_process.py
        self.secret = os.urandom(32).hex()
        self.dir = cluster.root / name
        self.id = ""
        self.addr = ""
        self.runs = 0
        self.proc: asyncio.subprocess.Process | None = None
        self.answers: asyncio.Queue[str | None] = asyncio.Queue()
        self.reader: asyncio.Task[None] | None = None

    @property
    def stderr(self) -> Path:
        return self.cluster.root / f"{self.name}-run{self.runs}.stderr"

    async def start(self, bootstrap: list[str]) -> None:
        self.runs += 1
        args = [
            str(DURABLE_NODE),
            "--key",
            self.cluster.key.to_hex(),
            "--secret",
            self.secret,
            "--dir",
            str(self.dir),
            "--prefix",
            f"{self.name}r{self.runs}",
            "--segment-bytes",
            str(SEGMENT_BYTES),
            "--snapshot-every",
            str(SNAPSHOT_EVERY),
        ]
        for addr in bootstrap:
            args += ["--bootstrap", addr]
        args += self.flags
        self.proc = await spawn_member(args, self.stderr)
        self.answers = asyncio.Queue()
        self.reader = asyncio.create_task(self._read(self.proc, self.answers))
        line = await self._answer(FORMING)
        assert line.startswith("ADDR "), f"{self.name} started with {line!r}"
        self.addr = line.split()[1]
        peer = bytes(mosaik.EndpointAddr.parse(self.addr).peer_id).hex()
        assert self.id in ("", peer), f"{self.name} came back as another peer"
        self.id = peer

    async def _read(
        self, proc: asyncio.subprocess.Process, answers: asyncio.Queue[str | None]
    ) -> None:
        """Records every ``ACK`` line; queues the other lines as answers."""
        assert proc.stdout is not None
        while raw := await proc.stdout.readline():
            line = raw.decode().strip()
            if line.startswith("ACK "):
                self.cluster.acked.add(line.split()[1])
            elif line:
                answers.put_nowait(line)
        answers.put_nowait(None)

    async def _answer(self, timeout: float) -> str:
        line = await bounded(self.answers.get(), timeout)
        if line is None:
            assert self.proc is not None
            rc = await bounded(self.proc.wait())
            tail = self.stderr.read_text()[-3000:]
            raise AssertionError(f"{self.name} ended (rc={rc}); stderr:\n{tail}")
        return line

    async def ask(self, line: str, expect: str) -> list[str]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(f"{line}\n".encode())
        reply = await self._answer(ANSWER)
        words = reply.split()
        assert words[0] == expect, f"{line!r} on {self.name}: {reply}"
        return words

    async def status(self) -> Status:
        w = await self.ask("status", "STATUS")
        return Status(
            leader=None if w[1] == "none" else w[1],
            is_leader=w[2] == "1",
            committed=int(w[3]),
            applied=int(w[4]),
            bonds=int(w[5]),
            ids=int(w[6]),
            duplicates=int(w[7]),
            disorder=int(w[8]),
            digest=w[9],
            restores=int(w[10]),
        )

    async def applied_ids(self) -> set[str]:
        path = self.cluster.root / f"{self.name}-ids.json"
        await self.ask(f"dump {path}", "DUMPED")
        return set(json.loads(path.read_text()))

    async def kill(self) -> None:
        """SIGKILL; every ACK it printed before dying is recorded."""
        self.signal_kill()
        await self.reaped()

    def signal_kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)

    async def reaped(self) -> None:
        assert self.proc is not None and self.reader is not None
        await bounded(self.proc.wait())
        await bounded(self.reader)  # its stdout drained to the end

    def newest_segment(self) -> Path:
        segments = sorted(self.dir.glob("*.log"))
        assert segments, f"{self.name} has no log segment in {self.dir}"
        return segments[-1]


class Cluster:
    def __init__(self, root: Path, flags: dict[str, list[str]]) -> None:
        self.root = root
        self.key = mosaik.GroupKey.generate()
        self.acked: set[str] = set()
        names = [f"n{i}" for i in range(3)]
        self.nodes = [Node(self, name, flags.get(name, [])) for name in names]

    def others(self, node: Node) -> list[Node]:
        return [n for n in self.nodes if n is not node]

    async def start(self) -> None:
        first, *rest = self.nodes
        await first.start([])
        await asyncio.gather(*(n.start([first.addr]) for n in rest))

    async def crash(self) -> None:
        """SIGKILLs all three at once."""
        for node in self.nodes:
            node.signal_kill()
        await asyncio.gather(*(n.reaped() for n in self.nodes))

    async def restart(self, node: Node) -> None:
        await node.start([n.addr for n in self.others(node)])

    async def load(self, nodes: list[Node] | None = None, line: str = LOAD) -> None:
        await asyncio.gather(*(n.ask(line, "LOADING") for n in nodes or self.nodes))

    async def pause(self) -> None:
        await asyncio.gather(*(n.ask("pause", "PAUSED") for n in self.nodes))

    async def leader(self) -> Node | None:
        """The node the first live node names as leader, if any."""
        status = await self.nodes[0].status()
        return next((n for n in self.nodes if n.id == status.leader), None)

    async def settled(self, what: str) -> list[Status]:
        """Waits (load paused) until all three are bonded, name one leader and
        stand at the same committed index with all of it applied."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        ids = {n.id for n in self.nodes}
        while True:
            statuses = [await n.status() for n in self.nodes]
            first = statuses[0]
            if (
                first.leader in ids
                and first.committed > 0
                and all(
                    s.bonds == 2
                    and s.leader == first.leader
                    and s.committed == first.committed
                    and s.applied == s.committed
                    for s in statuses
                )
            ):
                return statuses
            if loop.time() - start > SETTLING:
                raise AssertionError(f"{what}: not settled within {SETTLING}s; last: {statuses}")
            await asyncio.sleep(0.02)

    async def check(self, what: str) -> list[Status]:
        """Pauses the load, waits until everyone caught up, checks durability."""
        await self.pause()
        statuses = await self.settled(what)
        for node, s in zip(self.nodes, statuses, strict=True):
            assert s.duplicates == 0, f"{what}: {node.name} applied {s.duplicates} ids twice"
            assert s.disorder == 0, f"{what}: {node.name} applied {s.disorder} out of order"
        for node in self.nodes:
            missing = self.acked - await node.applied_ids()
            assert not missing, (
                f"{what}: {node.name} lacks {len(missing)} acknowledged commands, "
                f"e.g. {sorted(missing)[:5]}"
            )
        counts = {(s.ids, s.digest) for s in statuses}
        assert len(counts) == 1, f"{what}: the nodes applied different ids: {statuses}"
        assert statuses[0].ids >= len(self.acked)
        return statuses


@asynccontextmanager
async def cluster(root: Path, flags: dict[str, list[str]] | None = None) -> AsyncIterator[Cluster]:
    """Three members started (``flags``: more arguments of some, by name);
    every process is killed at the end."""
    c = Cluster(root, flags or {})
    try:
        await c.start()
        yield c
    finally:
        for node in c.nodes:
            if node.proc is not None and node.proc.returncode is None:
                node.proc.kill()
                await bounded(node.proc.wait())
            if node.reader is not None:
                await bounded(node.reader)


def append_garbage(segment: Path, rng: random.Random) -> bytes:
    """What a crash in the middle of appending a record leaves: a header
    announcing more bytes than follow it."""
    garbage = (4096).to_bytes(4, "little") + rng.randbytes(4 + rng.randrange(1, 200))
    with segment.open("ab") as out:
        out.write(garbage)
    return garbage


def cut_tail(segment: Path, count: int) -> int:
    """Cuts the last ``count`` bytes: the newest record is left half written."""
    size = segment.stat().st_size
    assert size > count, f"{segment} holds only {size} bytes"
    os.truncate(segment, size - count)
    return size - count


async def torn_tail_reported(stderr: Path) -> tuple[int, int]:
    """The stderr of a restarted node's run names the cut; returns (bytes cut, at byte)."""
    found: list[re.Match[str]] = []

    def reported() -> bool:
        match = TORN_TAIL.search(stderr.read_text())
        if match:
            found.append(match)
        return bool(match)

    await eventually(reported, 5.0, f"{stderr.name} reports the torn tail it cut")
    return int(found[0][1]), int(found[0][2])


async def test_acknowledged_commands_survive_twenty_sigkills_of_any_node(tmp_path: Path) -> None:
    seed = random.randrange(1 << 32)
    print(f"seed {seed}")
    rng = random.Random(seed)
    # Seven of the kills go to whoever leads at that moment, the others to any node.
    targets = ["leader"] * 7 + ["any"] * 13
    rng.shuffle(targets)
    torn = {4, 11, 17}  # restarts that first leave a half-written record behind
    again = {2, 9, 15}  # the restarted node is killed once more while it catches up
    restored = 0
    async with cluster(tmp_path) as c:
        await c.check("formed")
        for round_, target in enumerate(targets):
            what = f"round {round_} (seed {seed})"
            await c.load()
            await asyncio.sleep(rng.uniform(0.02, 0.4))
            victim = await c.leader() if target == "leader" else rng.choice(c.nodes)
            victim = victim or rng.choice(c.nodes)
            await victim.kill()
            garbage = append_garbage(victim.newest_segment(), rng) if round_ in torn else b""
            await asyncio.sleep(rng.uniform(0.0, 0.6))  # the others go on meanwhile
            await c.restart(victim)
            restarted = victim.stderr
            await c.load([victim])
            if round_ in again:
                await asyncio.sleep(rng.uniform(0.0, 0.3))
                await victim.kill()
                await c.restart(victim)
                await c.load([victim])
            await asyncio.sleep(rng.uniform(0.05, 0.4))
            statuses = await c.check(what)
            if garbage:
                cut, _ = await torn_tail_reported(restarted)
                assert cut == len(garbage), f"{what}: cut {cut} bytes, appended {len(garbage)}"
            restores = statuses[c.nodes.index(victim)].restores
            restored += restores > 0
            print(
                f"{what}: killed {victim.name} ({target}); {statuses[0].ids} ids applied, "
                f"{len(c.acked)} acknowledged; the victim restored {restores} snapshots"
            )
        assert len(c.acked) > 1000, f"only {len(c.acked)} commands acknowledged"
        assert restored > 0, "no restart restored a snapshot"


async def test_acknowledged_commands_survive_killing_every_node_at_once(tmp_path: Path) -> None:
    seed = random.randrange(1 << 32)
    print(f"seed {seed}")
    rng = random.Random(seed)
    async with cluster(tmp_path) as c:
        for round_ in range(4):
            what = f"crash {round_} (seed {seed})"
            await c.load()
            await asyncio.sleep(rng.uniform(0.2, 0.6))
            # Only the disks remember what was acknowledged.
            await c.crash()
            if round_ % 2:  # every node was in the middle of a write
                for node in c.nodes:
                    append_garbage(node.newest_segment(), rng)
            await c.start()
            await c.load()
            await asyncio.sleep(rng.uniform(0.1, 0.4))
            statuses = await c.check(what)
            if round_ % 2:
                for node in c.nodes:
                    await torn_tail_reported(node.stderr)
            print(f"{what}: {statuses[0].ids} ids applied, {len(c.acked)} acknowledged")


async def test_a_node_with_a_torn_garbage_or_zeroed_log_tail_restarts_and_catches_up(
    tmp_path: Path,
) -> None:
    rng = random.Random(7)
    async with cluster(tmp_path) as c:
        await c.load()
        await asyncio.sleep(1.0)
        await c.check("loaded")

        # Killed at rest, its newest record then cut short: all three hold that
        # record, so the node gets it back from the others.
        leader = await c.leader()
        follower = next(n for n in c.nodes if n is not leader)
        await follower.kill()
        offset = cut_tail(follower.newest_segment(), 3)
        await c.restart(follower)
        await c.load()
        await asyncio.sleep(0.5)
        await c.check("after the cut record")
        cut, at = await torn_tail_reported(follower.stderr)
        assert at + cut == offset, (cut, at, offset)

        # The leader killed under load, a half-written record left behind.
        await c.load()
        await asyncio.sleep(0.3)
        leader = await c.leader()
        assert leader is not None
        await leader.kill()
        garbage = append_garbage(leader.newest_segment(), rng)
        await c.restart(leader)
        await c.load([leader])
        await asyncio.sleep(0.5)
        await c.check("after the garbage tail")
        cut, _ = await torn_tail_reported(leader.stderr)
        assert cut == len(garbage)

        # A crash after the file grew but before its new block was written
        # leaves zeros where the next record should be.
        leader = await c.leader()
        follower = next(n for n in c.nodes if n is not leader)
        await follower.kill()
        with follower.newest_segment().open("ab") as out:
            out.write(bytes(4096))
        await c.restart(follower)
        await c.load()
        await asyncio.sleep(0.3)
        await c.check("after the zeroed tail")
        cut, _ = await torn_tail_reported(follower.stderr)
        assert cut == 4096


POISON_DEPTH = 200  # nested tuples: about 800 bytes, far beyond MAX_DEPTH
# Few enough commands that no snapshot is taken: a restart replays the log
# from its first entry, the poisoned one included.
SMALL_LOAD = "load 30 4 20"


async def apply_failure_reported(node: Node, index: int) -> None:
    """The current run of ``node`` logged the entry at ``index`` as an apply error."""
    line = f"apply failed at index {index}"
    await eventually(lambda: line in node.stderr.read_text(), 5.0, f"{node.name} logs {line!r}")


async def loaded(c: Cluster, count: int) -> None:
    """Waits until ``count`` commands of the load were acknowledged."""
    await eventually(lambda: len(c.acked) >= count, SETTLING, f"{count} commands acknowledged")


async def test_a_committed_entry_that_does_not_decode_is_an_apply_error_on_every_node(
    tmp_path: Path,
) -> None:
    """n2's machine sends bytes as they are (same signature, same group), so
    200 nested tuples reach every log; before the nesting bound every apply
    thread overflowed its stack decoding them and all three processes died,
    and again on restart."""
    async with cluster(tmp_path, {"n2": ["--raw-codec"]}) as c:
        poisoner = c.nodes[2]
        await c.check("formed")
        index = int((await poisoner.ask(f"poison {POISON_DEPTH}", "POISONED"))[1])
        await c.load(line=SMALL_LOAD)
        await loaded(c, 60)
        statuses = await c.check("after the poisoned entry")
        assert all(s.committed > index for s in statuses)
        for node in c.nodes:
            await apply_failure_reported(node, index)
            assert node.proc is not None and node.proc.returncode is None

        # Restarted on its disk log, a node replays the entry and stays up.
        restarted = c.nodes[0]
        await restarted.kill()
        await c.restart(restarted)
        await c.load(line=SMALL_LOAD)
        await loaded(c, 120)
        statuses = await c.check("after the restart")
        assert statuses[0].restores == 0, "a snapshot was restored: the log was not replayed"
        await apply_failure_reported(restarted, index)
        for node in c.nodes:
            assert node.proc is not None and node.proc.returncode is None
