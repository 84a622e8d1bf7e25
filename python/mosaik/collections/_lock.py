"""`Lock`: named leases with fencing tokens, on the leader's clock.

Time in the replicated state is the leader's, written into the log: while a
node leads and some lock is held, it proposes a tick ``[TICK, epoch, term,
reading]`` every ``tick`` seconds (an eighth of the election timeout), one
after another, where ``reading`` is its monotonic clock, ``term`` the term
it leads in and ``epoch`` random per unbroken run of ticks (a new one after
each pause). A tick counts only if it was appended in the term it was
stamped in, so by the leader that stamped it (a deposed leader's tick that
went to the new leader is appended in another term). Applying a counted
tick that follows another of the same run advances the group's clock by the
time between their readings; any other tick adds nothing. So:

- replicas never read their own clocks: every node computes the same clock
  from the log alone;
- time during an election, or around a deposed leader's late tick, is not
  counted: a leader change lengthens leases, never shortens them;
- the clock never runs ahead of real time: the counted intervals are of one
  leader's clock, and with a majority quorum the leaders' terms, hence
  their counted ticks, follow each other in real time.

A grant or renewal does not start counting at once: it waits for a tick
that follows, in the log and in the same run, another tick that came after
it. That tick was read off the clock after the grant was applied (the
ticker waits for each tick before the next), so a lease counts ``ttl`` of
the leader's time from after its command arrived, never from before. A
renewal never shortens a lease, and a lease does not expire while a
renewal it accepted waits to start counting. A tick that finds a lease
expired removes it. Every grant takes the next fencing token, which only
grows.

The holder keeps its own deadline, ``ttl`` after it sent its last
successful acquire or renewal, on `lease_clock` (which, unlike
``time.monotonic()``, goes on while the host is suspended): the replicated
state cannot expire the lease before then, so a holder that is cut off
learns of the loss (`Lease.lost`) no later than anyone else could take the
lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
import warnings
import weakref
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
    whether a tick came since it. ``epoch``, ``term`` and ``last`` are the
    run and reading of the latest tick (``epoch`` empty after a tick that
    did not count). Snapshots as ``[now, epoch, term, last, next_token,
    name, *row, ...]``."""

    kind = "lock"
    _ROW = 5
    _HEAD = 5

    def reset(self) -> None:
        self.tick = self.consensus.election_timeout.total_seconds() / 8
        self.locks: dict[str, list[Any]] = {}
        self.now = 0.0
        self.epoch = b""
        self.term = 0
        self.last = 0.0
        self.next_token = 1

    def dump(self) -> list[Any]:
        flat: list[Any] = [self.now, self.epoch, self.term, self.last, self.next_token]
        for name, row in self.locks.items():
            flat.append(name)
            flat.extend(row)
        return flat

    def load(self, state: list[Any]) -> None:
        width, head = self._ROW + 1, self._HEAD
        rows = state[head:]
        self.locks = {rows[i]: list(rows[i + 1 : i + width]) for i in range(0, len(rows), width)}
        self.now, self.epoch, self.term, self.last, self.next_token = state[:head]

    def contents(self) -> dict[str, int]:
        return {name: row[1] for name, row in self.locks.items()}

    def holding(self, name: str) -> list[Any] | None:
        """The live row of ``name`` at the clock's current reading."""
        row = self.locks.get(name)
        return row if row is not None and (row[3] or row[2] > self.now) else None

    def apply(self, command: Any, ctx: Any) -> Any:
        if command[0] == _TICK:
            return self._tick(ctx.log_position.term, *command[1:])
        return super().apply(command, ctx)

    def _tick(self, appended_in: int, epoch: bytes, term: int, reading: float) -> None:
        counted = term == appended_in
        follows = counted and epoch == self.epoch and term == self.term
        if follows:
            self.now += max(reading - self.last, 0.0)
            self.last = max(self.last, reading)
        elif counted:
            self.epoch, self.term, self.last = epoch, term, reading
        else:
            self.epoch = b""
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

    # The tick is dispatched by `apply` (it needs the entry's term).
    OPS = (_tick, _acquire, _renew, _release)


def lease_clock() -> float:
    """The clock of `Lease.deadline`, in seconds: ``CLOCK_BOOTTIME`` where
    there is one (it goes on while the host is suspended, so a holder that
    slept past its lease does not think it still holds), else
    ``time.monotonic()``."""
    return time.clock_gettime(_BOOTTIME) if _BOOTTIME is not None else time.monotonic()


_BOOTTIME: int | None = getattr(time, "CLOCK_BOOTTIME", None)


def _lock_name(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"a lock name is a str, not {type(value).__name__}")
    if not value:
        raise ValueError("a lock name must not be empty")
    return value


class _Keeping:
    """What a lease and its keeper task share (the task holds no reference
    to the `Lease`, so a lease dropped without release is collected, and
    its finalizer releases it)."""

    __slots__ = ("deadline", "keeper", "lost")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.lost: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.keeper: asyncio.Task[None] | None = None

    def lose(self, name: str, token: int, why: str) -> None:
        if not self.lost.done():
            self.lost.set_result(why)
            log.info("lock %r: lease %d lost: %s", name, token, why)


class Lease:
    """One grant of a lock: ``token`` is its fencing token, larger than any
    earlier grant's. The lease renews itself in the background every ``ttl
    / 3`` until it is released or lost; `lost` resolves then. Pass ``token``
    to whatever the lock protects and have it refuse tokens older than one
    it has seen: the lock alone cannot stop a holder that was paused past
    its lease. A lease that is dropped without `release` is released when
    it is garbage-collected (and warns)."""

    __slots__ = ("__weakref__", "_keeping", "_lock", "holder", "name", "token", "ttl")

    name: str
    """The name of the lock this lease holds."""
    holder: bytes
    """The random id this lease holds the lock as (the same across its
    renewals, unlike any other caller's)."""
    token: int
    """The fencing token of this grant: larger than that of every earlier
    grant of any lock of this collection."""
    ttl: float
    """Seconds the lease lasts after each renewal unless renewed again."""

    def __init__(
        self, lock: Lock, name: str, holder: bytes, token: int, ttl: float, sent: float
    ) -> None:
        self._lock = lock
        self.name = name
        self.holder = holder
        self.token = token
        self.ttl = ttl
        keeping = self._keeping = _Keeping(sent + ttl)
        keeping.keeper = asyncio.get_running_loop().create_task(
            _keep(lock, keeping, name, holder, token, ttl)
        )
        weakref.finalize(self, _abandon, lock, keeping, name, holder, token)

    @property
    def deadline(self) -> float:
        """The `lease_clock` reading until which this lease surely holds
        unless it is lost: ``ttl`` after the last successful renewal was sent."""
        return self._keeping.deadline

    @property
    def held(self) -> bool:
        """Neither released nor lost (as far as this node can tell now)."""
        keeping = self._keeping
        return not keeping.lost.done() and lease_clock() < keeping.deadline

    async def lost(self) -> str:
        """Resolves when the lease is gone (released, expired, or not
        renewed in time); why, in words."""
        return await asyncio.shield(self._keeping.lost)

    async def renew(self) -> bool:
        """Renews now; whether the group still granted it to this lease."""
        return await _renew(self._lock, self._keeping, self.name, self.holder, self.token, self.ttl)

    async def release(self) -> None:
        """Gives the lock back; `lost` resolves. Sent even when the lease is
        already lost here (a renewal whose answer was lost may have kept it
        in the group). Raises what the command raised; the lease then
        expires within ``ttl``."""
        keeping = self._keeping
        if keeping.keeper is not None:
            keeping.keeper.cancel()
        keeping.lose(self.name, self.token, "released")
        await self._lock._call([_RELEASE, self.name, self.holder, self.token], None)

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


def _still_granted(machine: LockMachine, name: str, holder: bytes, token: int) -> bool:
    row = machine.holding(name)
    return row is not None and row[0] == holder and row[1] == token


async def _renew(
    lock: Lock, keeping: _Keeping, name: str, holder: bytes, token: int, ttl: float
) -> bool:
    sent = lease_clock()
    ok: bool = await lock._call([_RENEW, name, holder, token, ttl], None)
    if ok:
        keeping.deadline = max(keeping.deadline, sent + ttl)
    else:
        keeping.lose(name, token, "the group no longer grants it to this lease")
    return ok


async def _keep(
    lock: Lock, keeping: _Keeping, name: str, holder: bytes, token: int, ttl: float
) -> None:
    """Renews every ``ttl / 3`` and watches the local state until the lease
    is lost; whatever ends this task loses the lease."""
    try:
        renew_at = keeping.deadline - ttl * 2 / 3
        while not keeping.lost.done():
            now = lease_clock()
            if now >= keeping.deadline:
                keeping.lose(name, token, f"not renewed within ttl {ttl:g} s")
                return
            if now >= renew_at:
                try:
                    await asyncio.wait_for(
                        _renew(lock, keeping, name, holder, token, ttl), keeping.deadline - now
                    )
                    renew_at = lease_clock() + ttl / 3
                except GroupTerminated:
                    raise
                except (CommandError, TimeoutError):
                    renew_at = lease_clock() + min(ttl / 10, 0.25)
                continue
            wait = min(renew_at, keeping.deadline) - now
            gone = await lock._until(lambda m: not _still_granted(m, name, holder, token), wait)
            if gone:
                keeping.lose(name, token, "released or expired in the group")
    except GroupTerminated:
        keeping.lose(name, token, "the lock's group was left")
    finally:
        keeping.lose(name, token, "its keeper stopped")


def _abandon(lock: Lock, keeping: _Keeping, name: str, holder: bytes, token: int) -> None:
    """A lease was collected: stop renewing it and release it if it held."""
    if keeping.keeper is not None:
        keeping.keeper.cancel()
    if keeping.lost.done():
        return
    keeping.lose(name, token, "dropped without release")
    warnings.warn(
        f"lock {name!r}: lease {token} was dropped without release(); releasing it",
        ResourceWarning,
        stacklevel=1,
    )
    with contextlib.suppress(RuntimeError):  # the loop is gone: the lease expires
        loop = keeping.lost.get_loop()
        loop.call_soon_threadsafe(_release_later, loop, lock, name, holder, token)


def _release_later(
    loop: asyncio.AbstractEventLoop, lock: Lock, name: str, holder: bytes, token: int
) -> None:
    async def release() -> None:
        with contextlib.suppress(CommandError):
            await lock._call([_RELEASE, name, holder, token], None)

    _background.add(task := loop.create_task(release()))
    task.add_done_callback(_background.discard)


# Releases of dropped leases, kept until done.
_background: set[asyncio.Task[None]] = set()


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

    Example:
        ```python
        locks = Lock.writer(net, "jobs", consensus=ConsensusConfig(min_quorum=2))
        async with locks.acquire("job-7", ttl=10) as lease:
            await storage.write(result, fencing_token=lease.token)
        ```

    The replicated state never lets two leases on one name be held at the
    same time. When a holder goes quiet (it crashed, or a partition cut it
    off), its lease ends roughly ``ttl`` plus three ticks (3/8 of an
    election timeout) after the last renewal if the group is steady; if the
    leader fails as well, add the time the election takes.
    Leases only count while the leader's event loop runs its ticks.

    These guarantees need ``consensus=ConsensusConfig(min_quorum=...)`` set
    to a majority of the members (2 of 3): with the default 1, a member cut
    off from the others leads a group of its own and grants on its own.
    """

    __slots__ = ()
    _machine_type = LockMachine

    def _opened(self) -> None:
        machine = self._machine
        if not self._writable or getattr(machine, "ticker", None) is not None:
            return
        if self._group.config().consensus.min_quorum < 2:
            log.warning(
                "lock %r runs with min_quorum 1: a member cut off from the others "
                "grants locks on its own; set min_quorum to a majority of the members",
                self._name,
            )
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
                        tick = [_TICK, epoch, group.log_position().term, time.monotonic()]
                        with contextlib.suppress(CommandOffline, CommandUnknown):
                            await group.execute(tick)
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

    def _ttl(self, value: object) -> float:
        least = 4 * self._machine.tick
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"ttl is a number of seconds, not {type(value).__name__}")
        if not math.isfinite(value) or value < least:
            raise ValueError(
                f"ttl must be finite and at least {least:g} s (half an election timeout), "
                f"not {value!r}"
            )
        return float(value)

    def acquire(self, name: str, ttl: float = 10.0, *, timeout: float | None = None) -> Acquiring:
        """Waits until this caller holds ``name`` (at most ``timeout``
        seconds, then `TimeoutError`; a grant whose answer was lost on the
        way then expires within ``ttl``); ``async with`` releases on exit.
        Offline spells and lost answers are waited out, not raised."""
        self._check_writable()
        return Acquiring(self, _lock_name(name), self._ttl(ttl), timeout)

    async def try_acquire(self, name: str, ttl: float = 10.0) -> Lease | None:
        """A lease on ``name`` if it is free now, else None. An answer that
        is lost on the way is asked for again with the same request id, so
        a grant is never made twice; `mosaik.CommandUnknown` only once no
        answer came within ``ttl``."""
        name, ttl = _lock_name(name), self._ttl(ttl)
        holder = os.urandom(16)
        sent = lease_clock()
        while True:
            try:
                token: int = await self._call([_ACQUIRE, name, holder, ttl], holder)
                break
            except CommandUnknown:
                if lease_clock() - sent >= ttl:
                    raise
        return await self._lease(name, holder, token, ttl, sent)

    async def _lease(
        self, name: str, holder: bytes, token: int, ttl: float, start: float
    ) -> Lease | None:
        """The lease of a grant that counts from ``start``, or None for no
        grant. A grant answered too late to be sure of (``ttl`` after
        ``start``) is renewed first, and is the lease only if that renewal
        finds it still granted."""
        if not token:
            return None
        if lease_clock() < start + ttl:
            return Lease(self, name, holder, token, ttl, start)
        sent = lease_clock()
        if await self._call([_RENEW, name, holder, token, ttl], None):
            return Lease(self, name, holder, token, ttl, sent)
        return None

    async def _acquire(self, name: str, ttl: float, within: float | None) -> Lease:
        """Asks until granted, as one holder throughout: an attempt whose
        answer was lost may have granted, and a later attempt by the same
        holder gets that grant's token back instead of waiting for it to
        expire. The lease then counts from the earliest such attempt."""
        deadline = None if within is None else lease_clock() + within
        machine: LockMachine = self._machine
        holder = os.urandom(16)
        unanswered: float | None = None  # when the oldest attempt that may have granted was sent
        attempt = 0
        while True:
            attempt += 1
            sent = lease_clock()
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
                start = sent if unanswered is None else unanswered
                lease = await self._lease(name, holder, token, ttl, start)
                if lease is not None:
                    return lease
            elif token == 0:
                unanswered = None  # our grant would have come back: there is none
            left = None if deadline is None else deadline - lease_clock()
            if left is not None and left <= 0:
                raise TimeoutError(f"lock {name!r} was not acquired within {within:g} s")
            poll = 4 * machine.tick if left is None else min(4 * machine.tick, left)
            if token is None:
                await asyncio.sleep(poll)  # no answer: do not ask again at once
            else:
                # Try again once it is free here, or after a while anyway
                # (an offline node may not hear of the release).
                await self._until(lambda m: m.holding(name) is None, poll)
