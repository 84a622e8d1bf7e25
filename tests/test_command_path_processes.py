"""The command path across real processes: one group member per process
(``command_process.py``, driven line by line over stdin), all on 127.0.0.1.

- Sizes: 15 MiB commands, from the leader and forwarded from a follower,
  reach every member whole; 17 MiB is refused at the call.
- Exactly once: commands with request ids while the leader is SIGKILLed
  (and restarted) or SIGSTOPped under a follower's load, and while both
  followers are SIGSTOPped under the leader's; every ``CommandUnknown`` is
  retried with ``err.request_id`` until OK, and every member applied each
  command exactly once, at the index its OK named, also where the first
  attempt had committed.
- Honest outcomes: under a load on every member (no request ids, no
  retries), leaders and followers are killed and paused (a leader with a
  follower, too, so that no quorum is left); every ``CommandOffline``
  answer is for a command no member applied, every OK for one every member
  applied at that index; ``CommandUnknown`` may be either.

Members keep their logs on disk where they are restarted, so that a restart
keeps the term and the vote (an in-memory member that forgot its vote could
vote twice in a term).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from process_io import spawn_member
from timings import FAST

import mosaik
from conftest import bounded

COMMAND_NODE = Path(__file__).with_name("command_process.py")

MiB = 1 << 20
FORMING = 15.0  # processes start, find each other, bond and elect
ANSWER = 20.0  # one command line answered (the node caps its own calls)
BLOB_ANSWER = 75.0  # a blob command answered (the node caps it at 60 s)
FILLERS = 20  # commands committed at most until every member counts as a voter
SETTLING = 20.0  # one leader named by all, bonded, after a fault
LOADED = 60.0  # a bounded load of the exactly-once test finishes
LINE_LIMIT = 1 << 24  # a STATE line holds every id applied

# forward_timeout of the exactly-once test: below the failover time (missed
# heartbeats 0.5 s, then a 0.3-0.4 s election), so that commands the killed
# leader took but did not commit in time come back unknown.
SHORT_FORWARD_TIMEOUT = 0.5
LARGE_ELECTION_TIMEOUT = 2.0  # the product default; see the 15 MiB test


@dataclass(frozen=True)
class Status:
    leader: str | None
    is_leader: bool
    committed: int
    last: int  # index of the last log entry
    bonds: int
    voters: int  # itself and the bonded peers that count toward a quorum


@dataclass(frozen=True)
class Outcome:
    node: str  # the member whose call answered
    id: str
    kind: str  # OK, OFFLINE, UNKNOWN, TIMEOUT, ERROR, GAVEUP
    rest: tuple[str, ...]  # OK: index [attempts seen]

    @property
    def index(self) -> int:
        return int(self.rest[0])


class Node:
    """One member: its fixed identity (and directory), and its current process."""

    def __init__(self, cluster: Cluster, name: str) -> None:
        self.cluster = cluster
        self.name = name
        self.secret = os.urandom(32).hex()
        self.dir = cluster.root / name
        self.id = ""
        self.addr = ""
        self.runs = 0
        self.loads: list[tuple[int, int, int]] = []  # LOADED ok unknown offline
        self.proc: asyncio.subprocess.Process | None = None
        self.answers: asyncio.Queue[str | None] = asyncio.Queue()
        self.reader: asyncio.Task[None] | None = None

    @property
    def stderr(self) -> Path:
        return self.cluster.root / f"{self.name}-run{self.runs}.stderr"

    async def start(self, bootstrap: list[str]) -> None:
        self.runs += 1
        args = [str(COMMAND_NODE), "--key", self.cluster.key.to_hex()]
        args += ["--secret", self.secret, "--forward-timeout", str(self.cluster.forward_timeout)]
        args += ["--election-timeout", str(self.cluster.election_timeout)]
        if self.cluster.disk:
            args += ["--dir", str(self.dir)]
        for addr in bootstrap:
            args += ["--bootstrap", addr]
        self.proc = await spawn_member(args, self.stderr, LINE_LIMIT)
        self.cluster.procs.append(self.proc)
        self.answers = asyncio.Queue()
        self.reader = asyncio.create_task(self._read(self.proc, self.answers))
        self.cluster.readers.append(self.reader)
        line = await self._answer(FORMING)
        assert line.startswith("ADDR "), f"{self.name} started with {line!r}"
        self.addr = line.split()[1]
        peer = bytes(mosaik.EndpointAddr.parse(self.addr).peer_id).hex()
        assert self.id in ("", peer), f"{self.name} came back as another peer"
        self.id = peer

    async def restart(self) -> None:
        await self.start([n.addr for n in self.cluster.others(self)])

    async def _read(
        self, proc: asyncio.subprocess.Process, answers: asyncio.Queue[str | None]
    ) -> None:
        """Records every outcome line and LOADED line; queues the others as answers."""
        assert proc.stdout is not None
        while raw := await proc.stdout.readline():
            words = raw.decode().split()
            if not words:
                continue
            if words[0] == "R":
                self.cluster.outcomes.append(
                    Outcome(self.name, words[1], words[2], tuple(words[3:]))
                )
            elif words[0] == "LOADED":
                self.loads.append((int(words[1]), int(words[2]), int(words[3])))
            else:
                answers.put_nowait(" ".join(words))
                continue
            async with self.cluster.changed:
                self.cluster.changed.notify_all()
        answers.put_nowait(None)

    async def _answer(self, timeout: float) -> str:
        line = await bounded(self.answers.get(), timeout)
        if line is None:
            assert self.proc is not None
            rc = await bounded(self.proc.wait())
            tail = self.stderr.read_text()[-3000:]
            raise AssertionError(f"{self.name} ended (rc={rc}); stderr:\n{tail}")
        return line

    async def ask(self, line: str, expect: str, timeout: float = ANSWER) -> list[str]:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(f"{line}\n".encode())
        reply = await self._answer(timeout)
        words = reply.split(" ", 2) if expect == "STATE" else reply.split()
        assert words[0] == expect, f"{line!r} on {self.name}: {reply[:500]}"
        return words

    async def status(self) -> Status:
        w = await self.ask("status", "STATUS")
        return Status(
            leader=None if w[1] == "none" else w[1],
            is_leader=w[2] == "1",
            committed=int(w[3]),
            last=int(w[4]),
            bonds=int(w[5]),
            voters=int(w[6]),
        )

    async def applied(self, index: int) -> dict[str, Any]:
        """The machine's state once ``index`` is committed and applied here."""
        reached = await self.ask(f"reach {index}", "REACHED")
        assert int(reached[1]) >= index
        _, position, text = await self.ask("state", "STATE")
        assert int(position) >= index
        state: dict[str, Any] = json.loads(text)
        return state

    async def load(self, name: str, spec: str) -> None:
        await self.ask(f"load {name} {spec}", "LOADING")

    async def kill(self) -> None:
        """SIGKILL; every outcome it printed before dying is recorded."""
        assert self.proc is not None and self.reader is not None
        self.proc.send_signal(signal.SIGKILL)
        await bounded(self.proc.wait())
        await bounded(self.reader)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


class Cluster:
    def __init__(
        self, root: Path, disk: bool, forward_timeout: float, election_timeout: float
    ) -> None:
        self.root = root
        self.disk = disk
        self.forward_timeout = forward_timeout
        self.election_timeout = election_timeout
        self.key = mosaik.GroupKey.generate()
        self.procs: list[asyncio.subprocess.Process] = []
        self.readers: list[asyncio.Task[None]] = []
        self.outcomes: list[Outcome] = []
        self.fillers = 0
        self.changed = asyncio.Condition()
        self.nodes = [Node(self, f"n{i}") for i in range(3)]

    def others(self, node: Node) -> list[Node]:
        return [n for n in self.nodes if n is not node]

    def by_id(self, peer: str | None) -> Node:
        return next(n for n in self.nodes if n.id == peer)

    async def start(self) -> None:
        first, *rest = self.nodes
        await first.start([])
        await asyncio.gather(*(n.start([first.addr]) for n in rest))

    async def whole(self, what: str) -> Node:
        """Waits until all three name one leader and are bonded, then until
        each counts all three as voters (``mosaik.groups.raft.committee.voters``);
        returns the leader. Right after the first election a member that
        bonded late may not count yet, and a follower killed then was seen to
        stall the group (the leader's next command never committed); after
        a restart from disk the others counted the member out too. An idle
        group commits nothing, so filler commands go to the leader until
        all count, and only then does a test inject its fault."""
        statuses: list[Status] = []
        for _ in range(FILLERS):
            leader = await self.settled(self.nodes, what)
            statuses = [await n.status() for n in self.nodes]
            if all(s.voters == len(self.nodes) and s.leader == leader.id for s in statuses):
                return leader
            self.fillers += 1
            words = await leader.ask(f"exec filler-{self.fillers}", "EXEC")
            assert words[1] == "OK", f"{what}: filler command: {words}"
        raise AssertionError(f"{what}: not all counted after {FILLERS} commands: {statuses}")

    async def until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        """Waits for outcome lines until ``condition`` holds."""
        async with self.changed:
            try:
                await bounded(self.changed.wait_for(condition), timeout)
            except TimeoutError:
                raise AssertionError(f"{what}: not within {timeout}s") from None

    def count(self, kind: str, since: int = 0, node: Node | None = None) -> int:
        return sum(
            1
            for o in self.outcomes[since:]
            if o.kind == kind and (node is None or o.node == node.name)
        )

    async def settled(
        self, nodes: list[Node], what: str, *, bonded: bool = True, excluding: Node | None = None
    ) -> Node:
        """Polls until every one of ``nodes`` names the same leader, one of
        them (and not ``excluding``), and (with ``bonded``) is bonded to the
        others; returns the leader."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        ids = {n.id for n in nodes} - ({excluding.id} if excluding else set())
        while True:
            statuses = [await n.status() for n in nodes]
            leader = statuses[0].leader
            if (
                leader in ids
                and all(s.leader == leader for s in statuses)
                and (not bonded or all(s.bonds == len(nodes) - 1 for s in statuses))
            ):
                return self.by_id(leader)
            if loop.time() - start > SETTLING:
                named = {n.name: (n.id[:8], s) for n, s in zip(nodes, statuses, strict=True)}
                raise AssertionError(f"{what}: not settled within {SETTLING}s; last: {named}")
            await asyncio.sleep(0.02)

    async def barrier(self, leader: Node, name: str) -> tuple[int, list[dict[str, Any]]]:
        """Every member's state once a barrier command, executed on
        ``leader`` after everything before it settled, is applied there."""
        words = await leader.ask(f"exec {name}", "EXEC")
        assert words[1] == "OK", f"barrier {name}: {words}"
        index = int(words[2])
        return index, list(await asyncio.gather(*(n.applied(index) for n in self.nodes)))


@asynccontextmanager
async def running(
    root: Path,
    *,
    disk: bool = False,
    forward_timeout: float = 1.0,
    election_timeout: float = FAST["election_timeout"],
) -> AsyncIterator[Cluster]:
    """A cluster of three members (not started); every process is killed at the end."""
    cluster = Cluster(root, disk, forward_timeout, election_timeout)
    try:
        yield cluster
    finally:
        for proc in cluster.procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGCONT)  # a paused process must die too
                proc.kill()
                await bounded(proc.wait())
        await bounded(asyncio.gather(*cluster.readers))  # every stdout read to its end


def check_states(
    states: list[dict[str, Any]], barrier: int, outcomes: Iterable[Outcome]
) -> dict[str, int]:
    """The honesty of ``outcomes`` against every member's applied state:
    nothing applied twice; the same entries up to ``barrier`` everywhere;
    every OK applied everywhere at its index; every OFFLINE nowhere. Returns
    how many outcomes of each kind there were, and how many UNKNOWN ones
    were applied after all."""
    for i, state in enumerate(states):
        twice = {k: v for k, v in state["ids"].items() if len(v) != 1}
        assert not twice, (
            f"member {i} applied commands more than once: {dict(list(twice.items())[:5])}"
        )
    settled = [{k: v[0] for k, v in state["ids"].items() if v[0] <= barrier} for state in states]
    assert all(s == settled[0] for s in settled), "the members applied different commands"
    tally = {"OK": 0, "OFFLINE": 0, "UNKNOWN": 0, "UNKNOWN applied": 0}
    for o in outcomes:
        assert o.kind in ("OK", "OFFLINE", "UNKNOWN"), f"{o.node}: {o.id} {o.kind} {o.rest}"
        tally[o.kind] += 1
        where = [state["ids"].get(o.id) for state in states]
        if o.kind == "OK":
            assert all(w == [o.index] for w in where), (
                f"{o.node} answered OK {o.index} for {o.id}, the members applied it at {where}"
            )
        elif o.kind == "OFFLINE":
            assert all(w is None for w in where), (
                f"{o.node} answered OFFLINE for {o.id}, the members applied it at {where}"
            )
        elif all(w is not None for w in where):
            tally["UNKNOWN applied"] += 1
    return tally


async def test_15_mib_commands_reach_every_member_whole_and_17_mib_is_refused_at_the_call(
    tmp_path: Path,
) -> None:
    big, small = 15 * MiB, 100
    # The default election timeout, not the test's 0.3 s: a leader keeps
    # leading only while a quorum answers within it, and a follower answers
    # an append only once its 15 MiB frame is whole, which on a loaded
    # machine took longer than 0.3 s (the leader stepped down and the
    # follower's forward was refused: OFFLINE). Followers count bytes still
    # arriving as a heartbeat; the leader does not yet count bytes taken.
    async with running(tmp_path, election_timeout=LARGE_ELECTION_TIMEOUT) as cluster:
        await cluster.start()
        leader = await cluster.whole("one leader")
        followers = cluster.others(leader)

        expected: list[list[Any]] = []  # index, length, first byte, sha256
        seconds: dict[str, float] = {}
        for role, node, byte in (("leader", leader, 1), ("follower", followers[0], 2)):
            words = await node.ask(f"blob {big} {byte}", "BLOB", BLOB_ANSWER)
            assert words[1] == "OK", f"15 MiB on the {role}: {words}"
            seconds[role] = float(words[3])
            expected.append(
                [int(words[2]), big, byte, hashlib.sha256(bytes([byte]) * big).hexdigest()]
            )
        print(
            f"\n15 MiB execute across processes: on the leader {seconds['leader']:.3f} s, "
            f"on a follower (forwarded) {seconds['follower']:.3f} s"
        )
        for byte in range(3, 9):
            node = [followers[1], leader, followers[0]][byte % 3]
            words = await node.ask(f"blob {small} {byte}", "BLOB")
            assert words[1] == "OK", f"small command {byte}: {words}"
            expected.append(
                [int(words[2]), small, byte, hashlib.sha256(bytes([byte]) * small).hexdigest()]
            )

        committed = (await leader.status()).committed
        for node in (followers[0], leader):
            words = await node.ask(f"blob {17 * MiB} 9", "BLOB")
            assert words[1] == "TOOLARGE", f"17 MiB on {node.name}: {words}"
            size, limit, before, after = map(int, words[2:6])
            assert size > limit == 16 * MiB
            assert before == after, f"{node.name} committed something for the refused command"
        assert (await leader.status()).committed == committed, "the leader committed something"

        last = expected[-1][0]
        for node in cluster.nodes:
            state = await node.applied(last)
            assert state["blobs"] == expected, f"{node.name} applied other blobs"


async def test_a_member_restarted_after_large_sends_to_it_while_dead_bonds_again_at_once(
    tmp_path: Path,
) -> None:
    """A send to a SIGKILLed peer that its flow control blocks must not keep
    the dead bond (which made the restarted peer wait ~30 s for the QUIC
    idle timeout, refused as already bonded): a peer that takes no bytes
    for its silence window loses the bond like a silent one."""
    async with running(tmp_path, disk=True) as cluster:
        await cluster.start()
        leader = await cluster.whole("one leader")
        victim = cluster.others(leader)[0]
        await victim.kill()
        words = await leader.ask(f"blob {MiB} 1", "BLOB", BLOB_ANSWER)
        assert words[1] == "OK", f"1 MiB with one member dead: {words}"
        await victim.restart()
        await cluster.whole("everyone bonded again, one leader")


async def test_retries_after_command_unknown_with_its_request_id_apply_each_command_once(
    tmp_path: Path,
) -> None:
    count = 80
    unknown = 0
    deduped: set[str] = set()  # ids whose earlier attempt was seen committed before a retry
    retried: dict[str, int] = {}  # id with an UNKNOWN attempt -> the index its OK named
    async with running(tmp_path, disk=True, forward_timeout=SHORT_FORWARD_TIMEOUT) as cluster:
        await cluster.start()
        restarted: Node | None = None
        # 1. A follower's load; the leader is SIGKILLed (and restarted):
        #    what the follower forwarded to it last gets no answer.
        # 2. A follower's load; the leader is SIGSTOPped, and resumed once
        #    the others went on without it: the forwards' replies never come.
        # 3. The leader's own load; both followers are SIGSTOPped until the
        #    leader answered UNKNOWN, then resumed: what the leader sent them
        #    meanwhile waited in their sockets, so those commands commit after
        #    all, and the retries must find them instead of applying again.
        for run, fault in enumerate(("kill leader", "pause leader", "pause followers"), 1):
            leader = await cluster.whole(f"round {run}: one leader")
            caller = leader if fault == "pause followers" else cluster.others(leader)[0]
            name, mark, loads = f"k{run}", len(cluster.outcomes), len(caller.loads)
            await caller.load(name, f"{count} 4 0 keyed {LOADED}")
            await cluster.until(
                lambda m=mark: cluster.count("OK", m) >= 20, 10.0, f"round {run}: 20 OKs"
            )

            def loaded(c: Node = caller, n: int = loads) -> bool:
                return len(c.loads) > n

            if fault == "kill leader":
                await leader.kill()
                restarted = leader
                await cluster.until(loaded, LOADED, f"round {run}: load done")
                await leader.restart()
            elif fault == "pause leader":
                leader.pause()
                try:
                    await cluster.until(loaded, LOADED, f"round {run}: load done")
                finally:
                    leader.resume()
            else:
                followers = cluster.others(leader)
                for node in followers:
                    node.pause()
                try:
                    await cluster.until(
                        lambda m=mark: cluster.count("UNKNOWN", m) >= 1, 10.0, f"round {run}"
                    )
                finally:
                    for node in followers:
                        node.resume()
                await cluster.until(loaded, LOADED, f"round {run}: load done")
            now = await cluster.whole(f"round {run}: all three again")
            barrier, states = await cluster.barrier(now, f"barrier-{run}")

            mine = [o for o in cluster.outcomes[mark:] if o.id.startswith(f"{name}.")]
            bad = [o for o in mine if o.kind not in ("OK", "UNKNOWN", "OFFLINE")]
            assert not bad, f"round {run}: {bad[:5]}"
            oks = {o.id: o for o in mine if o.kind == "OK"}
            assert sorted(oks) == sorted(f"{name}.{i}" for i in range(count)), (
                f"round {run}: not every command answered OK once"
            )
            for o in mine:
                if o.kind == "UNKNOWN":
                    retried[o.id] = oks[o.id].index
            unknown += sum(o.kind == "UNKNOWN" for o in mine)
            for o in oks.values():
                if o.rest[2] != "-":
                    # Seen applied before a retry: the retry applied nothing
                    # and answered the first attempt's index.
                    assert o.rest[2] == o.rest[0], f"{o.id} seen at {o.rest[2]}, OK {o.index}"
                    deduped.add(o.id)
            # Exactly once, at the index the OK named, on every member.
            check_states(states, barrier, oks.values())
        assert unknown, "no CommandUnknown in three rounds"
        assert deduped, "no retry found its first attempt committed (round 3 makes them)"

        # The member killed and restarted answers a repeat with the first
        # index and applies nothing.
        assert restarted is not None
        for command_id in sorted(retried, key=lambda i: (i not in deduped, i))[:6]:
            index = retried[command_id]
            words = await restarted.ask(f"exec {command_id}", "EXEC")
            assert words[1:3] == ["OK", str(index)], f"repeat of {command_id}: {words}"
        now = await cluster.whole("one leader at the end")
        barrier, states = await cluster.barrier(now, "barrier-end")
        for state in states:
            assert all(state["ids"][i] == [x] for i, x in retried.items())
        check_states(states, barrier, [])
        print(
            f"\nexactly once over three faults: {unknown} CommandUnknown answers on "
            f"{len(retried)} commands, {len(deduped)} of which were seen committed before "
            "their retry (the retry applied nothing)"
        )


async def test_offline_answers_are_never_applied_and_ok_answers_everywhere_across_kills_and_pauses(
    tmp_path: Path,
) -> None:
    spec = f"100000 2 0.02 once {LOADED * 2}"
    async with running(tmp_path, disk=True) as cluster:
        await cluster.start()
        await cluster.whole("one leader")

        def progressed(nodes: list[Node], since: int, oks: int = 5) -> Callable[[], bool]:
            return lambda: all(cluster.count("OK", since, n) >= oks for n in nodes)

        async def healthy(what: str) -> Node:
            leader = await cluster.whole(what)
            await cluster.until(progressed(cluster.nodes, len(cluster.outcomes)), 10.0, what)
            return leader

        async def kill_and_restart(victim: Node) -> None:
            await victim.kill()
            survivors = cluster.others(victim)
            await cluster.settled(survivors, "survivors lead", bonded=False, excluding=victim)
            await victim.restart()
            await victim.load(f"{victim.name}r{victim.runs}", spec)

        for node in cluster.nodes:
            await node.load(f"{node.name}r{node.runs}", spec)
        leader = await healthy("load running")

        await kill_and_restart(leader)
        leader = await healthy("after the first kill")

        # The leader paused while the others elect and commit on.
        leader.pause()
        try:
            majority = cluster.others(leader)
            await cluster.settled(majority, "majority elects", bonded=False, excluding=leader)
            await cluster.until(progressed(majority, len(cluster.outcomes)), 10.0, "majority OKs")
        finally:
            leader.resume()
        leader = await healthy("after the leader's pause")

        # The leader and a follower paused: the third has no quorum.
        alone = cluster.others(leader)[0]
        paused = cluster.others(alone)
        mark = len(cluster.outcomes)
        for node in paused:
            node.pause()
        try:
            await cluster.until(
                lambda: cluster.count("OFFLINE", mark, alone) >= 1, 10.0, "OFFLINE alone"
            )
        finally:
            for node in paused:
                node.resume()
        leader = await healthy("after the pause of two")

        # A follower paused while the others commit on: the replies to what
        # it forwarded wait in its socket past its deadlines (lost replies).
        follower = cluster.others(leader)[0]
        follower.pause()
        try:
            others = cluster.others(follower)
            await cluster.until(progressed(others, len(cluster.outcomes), 40), 10.0, "others OK")
        finally:
            follower.resume()
        leader = await healthy("after a follower's pause")

        await kill_and_restart(cluster.others(leader)[0])
        leader = await healthy("after a follower's kill")

        await kill_and_restart(leader)
        await healthy("after the second kill of a leader")

        await asyncio.gather(*(n.ask("stop", "STOPPED", LOADED) for n in cluster.nodes))
        leader = await cluster.whole("load stopped")
        barrier, states = await cluster.barrier(leader, "barrier")
        tally = check_states(states, barrier, cluster.outcomes)
        assert tally["OK"] >= 100 and tally["OFFLINE"] >= 1, tally
        print(f"\nhonest outcomes over 3 kills and 3 pauses: {tally}")
