"""One nemesis round: a cluster in a fresh namespace, clients, faults, a final
read on every member after healing, and the checker.

Everything is bounded: each client by a number of operations and the round's
deadline, each request by a timeout, each fault by a random duration, the
fault schedule by a count, the healing and the final reads by timeouts.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import checker
from .cluster import Cluster, Member, MemberGone
from .history import History
from .netns import Namespace

CALL_LIMIT = 3.0  # a member gives up on one execute or strong query after this
MAX_PAUSE = 3.0
# The driver gives up on an answer after this: a paused member answers late.
REQUEST_TIMEOUT = CALL_LIMIT + MAX_PAUSE + 2.0
READ_RATIO = 0.3
FORM_TIMEOUT = 30.0  # processes start, bond and elect a first leader
SETTLE_TIMEOUT = 5.0  # after a fault is healed, until everyone names one leader
CATCH_UP_TIMEOUT = 10.0  # a member restarted with an empty log catches up
CONVERGE_TIMEOUT = 30.0  # at the end, until every member agrees
FINAL_TIMEOUT = 30.0  # final reads on every member, equal on all

FAULTS = ("isolate-leader", "split", "bridge", "flap", "pause", "kill")


@dataclass
class Settings:
    seed: int
    workdir: Path
    members: int = 3
    store: str = "memory"
    duration: float = 25.0  # seconds of workload under faults
    clients: int = 0  # 0: members + 1
    max_ops_per_client: int = 5000
    max_faults: int = 100
    faults: tuple[str, ...] = FAULTS
    # Harness self-checks only (the soak's --unsafe-*): a quorum floor below a
    # majority, or weak reads, must make the checker find anomalies.
    min_quorum: int = 0  # 0: a majority of the members
    weak_reads: bool = False


@dataclass
class RoundResult:
    settings: Settings
    check: checker.Result
    faults: Counter[str]
    history: Path
    elapsed: float
    notes: list[str] = field(default_factory=list)
    ops: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def errors(self) -> list[str]:
        """ERROR answers (an exception no outcome was promised for): a bug of
        the member or the library, never expected."""
        return [
            f"op {op['op']} {op['f']} on member {op['member']} at {op['invoke']}s: {op['text']}"
            for op in self.ops
            if op["outcome"] == "error"
        ]

    def line(self) -> str:
        s = self.settings
        faults = " ".join(f"{k}={n}" for k, n in sorted(self.faults.items())) or "none"
        return (
            f"seed={s.seed} members={s.members} store={s.store} {self.elapsed:.0f}s "
            f"faults[{sum(self.faults.values())}]: {faults}; {self.check.summary()}"
        )


class Round:
    def __init__(self, settings: Settings, ns: Namespace) -> None:
        self.settings = settings
        self.ns = ns
        self.rng = random.Random(settings.seed)
        self.loop = asyncio.get_running_loop()
        self.t0 = self.loop.time()
        settings.workdir.mkdir(parents=True, exist_ok=True)
        self.history = History(settings.workdir / "history.jsonl")
        self.history.meta(
            seed=settings.seed,
            members=settings.members,
            store=settings.store,
            duration=settings.duration,
            namespace=ns.name,
            min_quorum=settings.min_quorum or settings.members // 2 + 1,
            weak_reads=settings.weak_reads,
        )
        self.cluster = Cluster(
            ns,
            settings.workdir,
            settings.members,
            settings.store,
            CALL_LIMIT,
            settings.min_quorum or settings.members // 2 + 1,
            settings.weak_reads,
            lambda m, words: self.history.late(m, words, self.now()),
        )
        self.values = itertools.count(1)
        self.faults: Counter[str] = Counter()

    def now(self) -> float:
        return round(self.loop.time() - self.t0, 4)

    def note(self, text: str, quiet: bool = False) -> None:
        self.history.note(text, self.now(), quiet)

    # -- operations -------------------------------------------------------

    async def append(self, member: Member, client: int, phase: str = "workload") -> None:
        op, value = self.cluster.next_op(), next(self.values)
        record: dict[str, Any] = {
            "f": "append",
            "op": op,
            "client": client,
            "member": member.index,
            "value": value,
            "invoke": self.now(),
            "complete": None,
            "outcome": "unknown",
            "index": None,
            "phase": phase,
        }
        try:
            words = await member.request(REQUEST_TIMEOUT, "APPEND", op, value)
        except (TimeoutError, MemberGone) as exc:
            record["text"] = type(exc).__name__
        else:
            record["complete"] = self.now()
            verb = words[0]
            if verb == "OK":
                record["outcome"], record["index"] = "ok", int(words[2])
            elif verb == "OFFLINE":
                record["outcome"] = "offline"
            elif verb == "ERROR":
                record["outcome"], record["text"] = "error", " ".join(words[2:])
        self.history.op(record)

    async def read(self, member: Member, client: int, phase: str = "workload") -> dict[str, Any]:
        op = self.cluster.next_op()
        record: dict[str, Any] = {
            "f": "read",
            "op": op,
            "client": client,
            "member": member.index,
            "invoke": self.now(),
            "complete": None,
            "outcome": "unknown",
            "journal": None,
            "phase": phase,
        }
        try:
            words = await member.request(REQUEST_TIMEOUT, "READ", op)
        except (TimeoutError, MemberGone) as exc:
            record["text"] = type(exc).__name__
        else:
            record["complete"] = self.now()
            verb = words[0]
            if verb == "READ":
                items = [] if words[2] == "-" else words[2].split(",")
                record["outcome"] = "ok"
                record["journal"] = [[int(x) for x in item.split(":")] for item in items]
            elif verb == "QOFFLINE":
                record["outcome"] = "offline"
            elif verb == "ERROR":
                record["outcome"], record["text"] = "error", " ".join(words[2:])
        self.history.op(record)
        return record

    async def client(self, client: int, deadline: float) -> None:
        rng = random.Random(f"{self.settings.seed}-client-{client}")
        for _ in range(self.settings.max_ops_per_client):
            if self.loop.time() >= deadline:
                return
            member = rng.choice(self.cluster.members)
            if not member.alive:
                await asyncio.sleep(0.05)
                continue
            if rng.random() < READ_RATIO:
                await self.read(member, client)
            else:
                await self.append(member, client)
            await asyncio.sleep(rng.uniform(0.0, 0.02))

    # -- faults -----------------------------------------------------------

    def others(self, member: Member) -> list[Member]:
        return [m for m in self.cluster.members if m is not member]

    @staticmethod
    def cross(a: list[Member], b: list[Member]) -> list[tuple[str, str]]:
        return [(x.address, y.address) for x in a for y in b]

    async def target(self) -> Member:
        """The leader half of the time (if one is known), else any member."""
        if self.rng.random() < 0.5:
            leader = await self.cluster.leader()
            if leader is not None:
                return leader
        return self.rng.choice(self.cluster.members)

    def record(self, kind: str, start: float, members: list[Member], **detail: Any) -> None:
        self.faults[kind] += 1
        self.history.fault(
            {
                "fault": kind,
                "start": start,
                "end": self.now(),
                "members": [m.index for m in members],
                **detail,
            }
        )

    async def fault(self, kind: str) -> None:
        rng, members, start = self.rng, self.cluster.members, self.now()
        hold = rng.uniform(1.0, 4.0)
        if kind == "isolate-leader":
            leader = await self.cluster.leader() or rng.choice(members)
            self.ns.cut(self.cross([leader], self.others(leader)))
            await asyncio.sleep(hold)
            self.ns.heal()
            self.record(kind, start, [leader], known_leader=leader.peer[:8])
        elif kind == "split":
            side = rng.sample(members, rng.randint(1, len(members) // 2))
            rest = [m for m in members if m not in side]
            self.ns.cut(self.cross(side, rest))
            await asyncio.sleep(hold)
            self.ns.heal()
            self.record(kind, start, side, rest=[m.index for m in rest])
        elif kind == "bridge":
            bridge = rng.choice(members)
            rest = self.others(bridge)
            rng.shuffle(rest)
            cut_at = rng.randint(1, len(rest) - 1)
            left, right = rest[:cut_at], rest[cut_at:]
            self.ns.cut(self.cross(left, right))
            await asyncio.sleep(hold)
            self.ns.heal()
            self.record(
                kind, start, [bridge], left=[m.index for m in left], right=[m.index for m in right]
            )
        elif kind == "flap":
            side = rng.sample(members, rng.randint(1, len(members) // 2))
            rest = [m for m in members if m not in side]
            pairs = self.cross(side, rest)
            end = self.loop.time() + rng.uniform(2.0, 4.0)
            flips = 0
            for flips in range(1, 100):
                if self.loop.time() >= end:
                    break
                self.ns.cut(pairs if flips % 2 else [])
                await asyncio.sleep(rng.uniform(0.1, 0.3))
            self.ns.heal()
            self.record(kind, start, side, rest=[m.index for m in rest], flips=flips)
        elif kind == "pause":
            victim = await self.target()
            victim.pause()
            try:
                await asyncio.sleep(rng.uniform(0.5, MAX_PAUSE))
            finally:
                victim.resume()
            self.record(kind, start, [victim])
        elif kind == "kill":
            victim = await self.target()
            await victim.kill()
            await asyncio.sleep(rng.uniform(0.5, 2.0))
            await self.cluster.restart(victim)
            self.record(kind, start, [victim], store=self.settings.store)
            if self.settings.store == "memory" and not await self.caught_up(CATCH_UP_TIMEOUT):
                # A second amnesiac member before this one caught up would be
                # beyond the fault model (a majority of the state lost).
                self.note(f"member {victim.index} not caught up {CATCH_UP_TIMEOUT}s after restart")
        else:
            raise ValueError(f"unknown fault {kind}")

    async def settle(self, timeout: float) -> bool:
        """Waits until every running member names the same leader."""
        end = self.loop.time() + timeout
        while self.loop.time() < end:
            statuses = await self.cluster.statuses()
            leaders = {s[0] for s in statuses.values()}
            live = sum(1 for m in self.cluster.members if m.alive)
            if len(statuses) == live and len(leaders) == 1 and None not in leaders:
                return True
            await asyncio.sleep(0.1)
        return False

    async def caught_up(self, timeout: float) -> bool:
        """Waits until every member has committed what the furthest had at the call."""
        end, target = self.loop.time() + timeout, None
        while self.loop.time() < end:
            statuses = await self.cluster.statuses()
            committed = [s[2] for s in statuses.values()]
            if target is None and committed:
                target = max(committed)
            full = len(committed) == len(self.cluster.members)
            if target is not None and full and min(committed) >= target:
                return True
            await asyncio.sleep(0.1)
        return False

    async def nemesis(self, deadline: float) -> None:
        await asyncio.sleep(self.rng.uniform(1.0, 2.0))
        bag: list[str] = []  # every kind once per bag, in a seeded order
        for _ in range(self.settings.max_faults):
            if self.loop.time() + 1.0 >= deadline:
                return
            if not bag:
                bag = list(self.settings.faults)
                self.rng.shuffle(bag)
            kind = bag.pop()
            try:
                await self.fault(kind)
            finally:
                self.ns.heal()
            if not await self.settle(SETTLE_TIMEOUT):
                self.note(f"no single leader within {SETTLE_TIMEOUT}s after {kind}")
            await asyncio.sleep(self.rng.uniform(0.5, 1.5))

    # -- the end ----------------------------------------------------------

    async def converge(self) -> bool:
        """Everyone healed, resumed and running; waits until all name one
        leader and the same committed index twice in a row."""
        self.ns.heal()
        for m in self.cluster.members:
            m.resume()
        for m in self.cluster.members:
            if not m.alive:
                self.note(f"member {m.index} was not running at the end; restarted")
                await self.cluster.restart(m)
        end, last = self.loop.time() + CONVERGE_TIMEOUT, None
        statuses: dict[int, tuple[str | None, int, int]] = {}
        while self.loop.time() < end:
            statuses = await self.cluster.statuses()
            if len(statuses) == len(self.cluster.members):
                view = {(s[0], s[2]) for s in statuses.values()}
                if len(view) == 1 and None not in next(iter(view)):
                    if view == last:
                        return True
                    last = view
            await asyncio.sleep(0.2)
        self.note(f"members did not converge within {CONVERGE_TIMEOUT}s: {statuses}")
        return False

    async def final_reads(self) -> None:
        """A strong read on every member (retried), repeated until all are equal."""
        end = self.loop.time() + FINAL_TIMEOUT
        for _ in range(20):
            journals = []
            for m in self.cluster.members:
                for _ in range(10):
                    record = await self.read(m, client=-1, phase="final")
                    if record["outcome"] == "ok" or self.loop.time() >= end:
                        break
                    await asyncio.sleep(0.3)
                journals.append(record["journal"])
            if all(j is not None and j == journals[0] for j in journals):
                return
            if self.loop.time() >= end:
                self.note("final reads not equal on every member in time")
                return
            await asyncio.sleep(0.5)

    async def run(self) -> RoundResult:
        s = self.settings
        try:
            await self.cluster.start()
            if not await self.settle(FORM_TIMEOUT):
                self.note(f"no leader known by all within {FORM_TIMEOUT}s of the start")
            deadline = self.loop.time() + s.duration
            clients = s.clients or s.members + 1
            work = [asyncio.create_task(self.client(c, deadline)) for c in range(clients)]
            nemesis = asyncio.create_task(self.nemesis(deadline))
            try:
                await asyncio.wait_for(nemesis, s.duration + 60.0)
                await asyncio.wait_for(asyncio.gather(*work), REQUEST_TIMEOUT + 10.0)
            finally:
                for task in [nemesis, *work]:
                    task.cancel()
                await asyncio.gather(nemesis, *work, return_exceptions=True)
            self.note("workload and faults over; healing", quiet=True)
            await self.converge()
            await self.final_reads()
        finally:
            await self.cluster.kill_all()
            self.ns.heal()
            self.history.close()
        result = checker.check(self.history.ops, members=range(s.members))
        return RoundResult(
            s,
            result,
            self.faults,
            self.history.path,
            self.now(),
            self.history.notes,
            self.history.ops,
        )


async def run_round(settings: Settings) -> RoundResult:
    """One round in a namespace of its own (raises `netns.Unavailable` where
    namespaces or nft are refused)."""
    with Namespace() as ns:
        return await Round(settings, ns).run()
