"""`Lock`: named leases with fencing tokens, on the leader's clock.

Time in the replicated state is the leader's, written into the log: while a
node leads and some lock is held, it proposes a tick ``[TICK, epoch,
monotonic()]`` every ``tick`` seconds (an eighth of the election timeout),
one after another, where ``epoch`` is random per unbroken run of ticks (a
new one after each stint of leadership or pause). Applying a tick advances
the group's clock by the time since the tick before it in the log, if that
one had the same epoch; otherwise by nothing. So:

- replicas never read their own clocks: every node computes the same clock
  from the log alone;
- time during an election, or while a deposed leader's ticks interleave
  with the new leader's, is not counted: a leader change lengthens leases,
  never shortens them;
- the clock never runs ahead of the leader's real time.

A grant or renewal does not start counting at once: it waits for a tick
that follows, in the log and in the same epoch, another tick that came
after it. That second tick was read off the clock after the grant was
applied (the ticker waits for each tick before the next), so a lease
counts ``ttl`` of the leader's time from after its command arrived, never
from before. A renewal never shortens a lease, and a lease does not
expire while a renewal it accepted waits to start counting. A tick that finds a lease
expired removes it. Every grant takes the next fencing token, which only
grows.

The holder keeps its own deadline, ``ttl`` after it sent its last
successful acquire or renewal: the replicated state cannot expire the lease
before then, so a holder that is cut off learns of the loss (`Lease.lost`)
no later than anyone else could take the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from collections.abc import Generator
from types import TracebackType
from typing import Any

from ..exceptions import CommandError, CommandOffline, CommandUnknown, GroupTerminated
from ._base import Collection, CollectionMachine

log = logging.getLogger("mosaik")

_TICK, _ACQUIRE, _RENEW, _RELEASE = range(4)


class LockMachine(CollectionMachine):
    """The held locks and the clock. A row is ``[holder, token, expires,
    pending, seen]``: ``expires`` is infinite until a new grant starts
    counting; ``pending`` is the ttl of a grant or renewal not yet counting
    (0.0: none; a lease with one pending does not expire) and ``seen``
    whether a tick came since it. Snapshots as
    ``[now, epoch, last, next_token, name, *row, ...]``."""

    kind = "lock"
    _ROW = 5

    def reset(self) -> None:
        self.tick = self.consensus.election_timeout.total_seconds() / 8
        self.locks: dict[str, list[Any]] = {}
        self.now = 0.0
        self.epoch = b""
        self.last = 0.0
        self.next_token = 1

    def dump(self) -> list[Any]:
        flat: list[Any] = [self.now, self.epoch, self.last, self.next_token]
        for name, row in self.locks.items():
            flat.append(name)
            flat.extend(row)
        return flat

    def load(self, state: list[Any]) -> None:
        width = self._ROW + 1
        rows = state[4:]
        self.locks = {rows[i]: list(rows[i + 1 : i + width]) for i in range(0, len(rows), width)}
        self.now, self.epoch, self.last, self.next_token = state[:4]

    def contents(self) -> dict[str, int]:
        return {name: row[1] for name, row in self.locks.items()}

    def holding(self, name: str) -> list[Any] | None:
        """The live row of ``name`` at the clock's current reading."""
        row = self.locks.get(name)
        return row if row is not None and (row[3] or row[2] > self.now) else None

    def _tick(self, epoch: bytes, reading: float) -> None:
        follows = epoch == self.epoch
        if follows:
            self.now += max(reading - self.last, 0.0)
        self.epoch, self.last = epoch, reading
        now = self.now
        gone = []
        for name, row in self.locks.items():
            if row[3]:
                if row[4] and follows:
                    start = now + row[3]
                    row[2] = start if row[2] == math.inf else max(row[2], start)
                    row[3], row[4] = 0.0, False
                else:
                    row[4] = True
            if row[2] <= now and not row[3]:
                gone.append(name)
        for name in gone:
            del self.locks[name]

    def _acquire(self, name: str, holder: bytes, ttl: float) -> int:
        row = self.holding(name)
        if row is not None:
            return int(row[1]) if row[0] == holder else 0
        token = self.next_token
        self.next_token = token + 1
        self.locks[name] = [holder, token, math.inf, ttl, False]
        return token

    def _renew(self, name: str, holder: bytes, token: int, ttl: float) -> bool:
        row = self.holding(name)
        if row is None or row[0] != holder or row[1] != token:
            return False
        row[3], row[4] = max(row[3], ttl), False
        return True

    def _release(self, name: str, holder: bytes, token: int) -> bool:
        row = self.holding(name)
        if row is None or row[0] != holder or row[1] != token:
            return False
        del self.locks[name]
        return True

    OPS = (_tick, _acquire, _renew, _release)


def _ttl(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"ttl is a positive number of seconds, not {value!r}")
    return float(value)


def _lock_name(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"a lock name is a non-empty str, not {value!r}")
    return value


class Lease:
    """One grant of a lock: ``token`` is its fencing token, larger than any
    earlier grant's. The lease renews itself in the background until it is
    released or lost; `lost` resolves then. Pass ``token`` to whatever the
    lock protects and have it refuse tokens older than one it has seen: the
    lock alone cannot stop a holder that was paused past its lease."""

    __slots__ = ("_keeper", "_lock", "_lost", "deadline", "holder", "name", "token", "ttl")

    def __init__(
        self, lock: Lock, name: str, holder: bytes, token: int, ttl: float, sent: float
    ) -> None:
        self._lock = lock
        self.name = name
        self.holder = holder
        self.token = token
        self.ttl = ttl
        self.deadline = sent + ttl
        """`time.monotonic()` until which this lease surely holds, if not lost."""
        self._lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._keeper = asyncio.get_running_loop().create_task(self._keep())

    @property
    def held(self) -> bool:
        """Neither released nor lost (as far as this node can tell now)."""
        return not self._lost.done() and time.monotonic() < self.deadline

    async def lost(self) -> str:
        """Resolves when the lease is gone (released, expired, or not
        renewed in time); why, in words."""
        return await asyncio.shield(self._lost)

    async def renew(self) -> bool:
        """Renews now (the background renewal does this every ``ttl / 3``);
        whether the group still granted it to this lease."""
        sent = time.monotonic()
        ok: bool = await self._lock._call(
            [_RENEW, self.name, self.holder, self.token, self.ttl], None
        )
        if ok:
            self.deadline = max(self.deadline, sent + self.ttl)
        else:
            self._lose("the group no longer grants it to this lease")
        return ok

    async def release(self) -> None:
        """Gives the lock back; `lost` resolves. Raises what the command
        raised (the lease then expires within ``ttl``)."""
        self._keeper.cancel()
        if self._lost.done():
            return
        self._lose("released")
        await self._lock._call([_RELEASE, self.name, self.holder, self.token], None)

    def _lose(self, why: str) -> None:
        if not self._lost.done():
            self._lost.set_result(why)
            log.info("lock %r: lease %d lost: %s", self.name, self.token, why)

    def _still_granted(self, machine: LockMachine) -> bool:
        row = machine.holding(self.name)
        return row is not None and row[0] == self.holder and row[1] == self.token

    async def _keep(self) -> None:
        """Renews every ``ttl / 3`` and watches the local state until lost."""
        lock = self._lock
        renew_at = self.deadline - self.ttl * 2 / 3
        while not self._lost.done():
            now = time.monotonic()
            if now >= self.deadline:
                self._lose(f"not renewed within ttl {self.ttl:g} s")
                return
            if now >= renew_at:
                try:
                    await asyncio.wait_for(self.renew(), self.deadline - now)
                    renew_at = time.monotonic() + self.ttl / 3
                except (CommandOffline, CommandUnknown, TimeoutError):
                    renew_at = time.monotonic() + min(self.ttl / 10, 0.25)
                except GroupTerminated:
                    self._lose("the lock's group was left")
                    return
                continue
            wait = min(renew_at, self.deadline) - now
            try:
                granted = await lock._until(lambda m: not self._still_granted(m), wait)
            except GroupTerminated:
                self._lose("the lock's group was left")
                return
            if granted:
                self._lose("released or expired in the group")
                return

    async def __aenter__(self) -> Lease:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.release()
        except CommandError as error:
            log.warning(
                "lock %r: releasing lease %d failed (%s); it expires within %g s",
                self.name,
                self.token,
                error,
                self.ttl,
            )

    def __repr__(self) -> str:
        return f"Lease({self.name!r}, token={self.token}, held={self.held})"


class Acquiring:
    """What `Lock.acquire` returns: ``await`` it for a `Lease`, or use it as
    ``async with`` (the lease is released on exit)."""

    __slots__ = ("_lease", "_lock", "_name", "_timeout", "_ttl")

    def __init__(self, lock: Lock, name: str, ttl: float, timeout: float | None) -> None:
        self._lock, self._name, self._ttl, self._timeout = lock, name, ttl, timeout
        self._lease: Lease | None = None

    def __await__(self) -> Generator[Any, Any, Lease]:
        return self._lock._acquire(self._name, self._ttl, self._timeout).__await__()

    async def __aenter__(self) -> Lease:
        self._lease = await self._lock._acquire(self._name, self._ttl, self._timeout)
        return self._lease

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._lease is not None:
            await self._lease.__aexit__(exc_type, exc, tb)


class Lock(Collection):
    """Named locks granted as leases, with fencing tokens.

    >>> locks = Lock.writer(net, "jobs")
    >>> async with locks.acquire("job-7", ttl=10) as lease:
    ...     await storage.write(result, fencing_token=lease.token)

    No two leases of one name hold at once in the replicated state; a
    holder that stops renewing (crash, partition) loses the lock about
    ``ttl`` plus three ticks (3/8 of an election timeout) after its last
    renewal in a steady group, plus the election when the leader fails too.

    These guarantees need ``consensus=ConsensusConfig(min_quorum=...)`` set
    to a majority of the members (2 of 3): with the default 1, a member cut
    off from the others leads a group of its own and grants on its own.
    """

    __slots__ = ()
    _machine_type = LockMachine

    def _opened(self) -> None:
        if self._group.config().consensus.min_quorum < 2:
            log.warning(
                "lock %r runs with min_quorum 1: a member cut off from the others "
                "grants locks on its own; set min_quorum to a majority of the members",
                self._name,
            )
        machine = self._machine
        if not self._writable or getattr(machine, "ticker", None) is not None:
            return
        # One clock per group on this node, however many handles share it.
        machine.ticker = asyncio.get_running_loop().create_task(self._tick_while_leading())

    async def _tick_while_leading(self) -> None:
        group, machine = self._group, self._machine
        with contextlib.suppress(GroupTerminated):
            while group.active:
                await group.when().is_leader()
                epoch = b""
                while group.is_leader():
                    if not machine.locks:
                        epoch = b""  # a pause: the next tick starts a new run
                    else:
                        epoch = epoch or os.urandom(8)
                        with contextlib.suppress(CommandOffline, CommandUnknown):
                            await group.execute([_TICK, epoch, time.monotonic()])
                    await asyncio.sleep(machine.tick)

    # -- local reads --------------------------------------------------------

    def token(self, name: str) -> int | None:
        """The fencing token of the lease holding ``name`` here, or None."""
        row = self._locked(lambda m: m.holding(name))
        return None if row is None else int(row[1])

    def __contains__(self, name: object) -> bool:
        """Whether the lock ``name`` is held here."""
        return isinstance(name, str) and self._locked(lambda m: m.holding(name)) is not None

    def __len__(self) -> int:
        """How many locks are held here (counting ones a tick will expire)."""
        return len(self._machine.locks)

    # -- acquiring ----------------------------------------------------------

    def acquire(self, name: str, ttl: float = 10.0, *, timeout: float | None = None) -> Acquiring:
        """Waits until this caller holds ``name`` (at most ``timeout``
        seconds, then `TimeoutError`; a grant whose answer was lost on the
        way then expires within ``ttl``); ``async with`` releases on exit.
        Offline spells and lost answers are waited out, not raised."""
        return Acquiring(self, _lock_name(name), _ttl(ttl), timeout)

    async def try_acquire(self, name: str, ttl: float = 10.0) -> Lease | None:
        """A lease on ``name`` if it is free now, else None. An answer that
        is lost on the way is asked for again with the same request id, so
        a grant is never made twice; `mosaik.CommandUnknown` only once no
        answer came within ``ttl``."""
        return await self._try(_lock_name(name), _ttl(ttl), os.urandom(16))

    async def _try(self, name: str, ttl: float, holder: bytes) -> Lease | None:
        sent = time.monotonic()
        while True:
            try:
                token: int = await self._call([_ACQUIRE, name, holder, ttl], holder)
                break
            except CommandUnknown:
                if time.monotonic() - sent >= ttl:
                    raise
        if token == 0:
            return None
        return Lease(self, name, holder, token, ttl, sent)

    async def _acquire(self, name: str, ttl: float, within: float | None) -> Lease:
        """Asks until granted, as one holder throughout: an attempt whose
        answer was lost may have granted, and a later attempt by the same
        holder gets that grant's token back instead of waiting for it to
        expire. The lease then counts from the earliest such attempt."""
        deadline = None if within is None else time.monotonic() + within
        machine: LockMachine = self._machine
        holder = os.urandom(16)
        unanswered: float | None = None  # when the oldest attempt that may have granted was sent
        attempt = 0
        while True:
            attempt += 1
            sent = time.monotonic()
            token: int | None = None
            call = self._call([_ACQUIRE, name, holder, ttl], holder + attempt.to_bytes(8, "big"))
            try:
                token = await (
                    call if deadline is None else asyncio.wait_for(call, deadline - sent)
                )
            except (CommandUnknown, TimeoutError):
                unanswered = sent if unanswered is None else unanswered
            except CommandOffline:
                pass
            if token:
                return Lease(
                    self, name, holder, token, ttl, sent if unanswered is None else unanswered
                )
            if token == 0:
                unanswered = None  # our grant would have come back: there is none
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"lock {name!r} was not acquired within {within:g} s")
            # Try again once it is free here, or after a while anyway (an
            # offline node may not hear of the release).
            poll = 4 * machine.tick if left is None else min(4 * machine.tick, left)
            await self._until(lambda m: m.holding(name) is None, poll)
