"""Coalescing single-command proposals.

Every `execute` or `feed` made while the event loop runs one iteration joins
one batch, which goes to the native side as a single proposal when the loop
gets to it (or when it is full): one call, one request to the consensus
worker and one native completion for the whole batch instead of one per
command. The batch's commands get consecutive log indices; each caller's
future resolves to its own index, or fails with its own command. As before
batching, cancelling a call does not withdraw a command already handed over.
A batch goes out before it would pass the group's ``max_batch_bytes``, so
that it fits in one message between members.

`ProposalStats` counts what became of a group's executed commands on this
node (committed, not committed, outcome unknown, still pending) and, once
metrics are collected, times each batch from proposal to commit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from . import _bridge, _native
from ._native import COMMAND_OVERHEAD
from ._requests import Key
from ._running import running_loop
from .exceptions import CommandError, CommandOffline, CommandUnknown

#: Most commands in one coalesced proposal.
MAX_BATCH = 4096

Requests = list[Key | None]
Propose = Callable[[list[bytes], bool, Requests | None], "_native.Pending[_native.Proposal]"]


def cost(data: bytes, request: Key | None) -> int:
    """What a command counts against a batch's ``max_batch_bytes``."""
    return len(data) + COMMAND_OVERHEAD + (0 if request is None else len(request[0]))


def unsettled(
    commands: list[Any], first: int, done: int, unknown: bool, request_id: bytes | None
) -> CommandError:
    """The error for the commands after the first ``done`` of a batch."""
    rest = commands[done:]
    committed = f"; the {done} before them committed from index {first}" if done else ""
    if unknown:
        return CommandUnknown(
            f"a leader took the commands, outcome unknown{committed}", rest, request_id
        )
    return CommandOffline(f"the commands were not committed{committed}", rest)


class ProposalStats:
    """What became of the commands one group executed from this node."""

    __slots__ = ("commit_seconds", "committed", "failed", "pending", "unknown")

    def __init__(self) -> None:
        self.committed = 0
        self.failed = 0
        self.unknown = 0
        self.pending = 0
        # Where commit times go (`mosaik.metrics`); none until collected.
        self.commit_seconds: Callable[[float], None] | None = None

    def started(self, count: int) -> float:
        """``count`` commands go out now; the time to pass to `settled`."""
        self.pending += count
        return time.perf_counter() if self.commit_seconds is not None else 0.0

    def settled(self, count: int, done: int, unknown: bool, started: float) -> None:
        """Of ``count`` commands sent at ``started``, the first ``done``
        committed; the others did not, or (``unknown``) may have."""
        self.pending -= count
        self.committed += done
        if unknown:
            self.unknown += count - done
        else:
            self.failed += count - done
        record = self.commit_seconds
        if record is not None and done and started:
            record(time.perf_counter() - started)

    def samples(self) -> dict[str, float]:
        """The counts as metric samples."""
        return {
            "mosaik.groups.proposals.committed": float(self.committed),
            "mosaik.groups.proposals.failed": float(self.failed),
            "mosaik.groups.proposals.unknown": float(self.unknown),
            "mosaik.groups.proposals.pending": float(self.pending),
        }


async def propose_counted(
    stats: ProposalStats | None, pending: _native.Pending[_native.Proposal], count: int
) -> _native.Proposal:
    """``pending``'s proposal of ``count`` commands, counted in ``stats``
    (an error counts them as not committed, a cancel as unknown)."""
    if stats is None:
        return await _bridge.watch(pending)
    started = stats.started(count)
    try:
        outcome = await _bridge.watch(pending)
    except asyncio.CancelledError:
        stats.settled(count, 0, True, started)
        raise
    except BaseException:
        stats.settled(count, 0, False, started)
        raise
    stats.settled(count, outcome.done, outcome.unknown, started)
    return outcome


class _Batch:
    __slots__ = ("commands", "cost", "data", "futures", "keyed", "requests", "sent", "stats")

    def __init__(self) -> None:
        self.commands: list[Any] = []
        self.data: list[bytes] = []
        self.requests: Requests = []
        self.futures: list[asyncio.Future[int]] = []
        self.cost = 0
        self.keyed = False
        self.stats: ProposalStats | None = None
        self.sent = 0.0

    def count(self, stats: ProposalStats, count: int) -> None:
        """Counts the batch's ``count`` commands, sent now, in ``stats``."""
        self.stats = stats
        self.sent = stats.started(count)

    def settle(self, ok: bool, outcome: Any) -> None:
        """Resolves each caller from the batch's ``outcome``: a `Proposal`
        when ``ok``, else the exception that ended the proposal."""
        error: BaseException | None = None
        first, done, unknown = (0, 0, False)
        if ok:
            first, done, unknown = outcome.first, outcome.done, outcome.unknown
        else:
            error = outcome
        for i, future in enumerate(self.futures):
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            elif i < done:
                future.set_result(first + i)
            elif unknown:
                request = self.requests[i]
                future.set_exception(
                    CommandUnknown(
                        "a leader took the command, outcome unknown",
                        [self.commands[i]],
                        None if request is None else request[0],
                    )
                )
            else:
                future.set_exception(
                    CommandOffline("the command was not committed", [self.commands[i]])
                )
        # Counted once every caller has its answer.
        if self.stats is not None:
            self.stats.settled(len(self.futures), done, unknown, self.sent)

    def fail(self, error: BaseException) -> None:
        for future in self.futures:
            if not future.done():
                future.set_exception(error)


class Proposals:
    """The batch of single commands waiting for one loop iteration to end."""

    __slots__ = ("_batch", "_budget", "_loop", "_on_assign", "_propose", "_stats")

    def __init__(
        self, propose: Propose, on_assign: bool, budget: int, stats: ProposalStats | None
    ) -> None:
        self._propose = propose
        self._on_assign = on_assign
        self._budget = budget
        self._stats = stats
        self._batch: _Batch | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def submit(self, command: Any, data: bytes, request: Key | None) -> asyncio.Future[int]:
        """The future of ``command`` (already encoded as ``data``, within
        the budget on its own), made with ``request`` as its request key."""
        loop = running_loop(self._loop)
        size = cost(data, request)
        if self._batch is not None and (
            loop is not self._loop or self._batch.cost + size > self._budget
        ):
            self._flush()
        batch = self._batch
        if batch is None:
            batch = self._batch = _Batch()
            self._loop = loop
            loop.call_soon(self._flush_batch, batch)
        future: asyncio.Future[int] = loop.create_future()
        batch.commands.append(command)
        batch.data.append(data)
        batch.requests.append(request)
        batch.futures.append(future)
        batch.cost += size
        batch.keyed = batch.keyed or request is not None
        if len(batch.data) >= MAX_BATCH:
            self._flush()
        return future

    def _flush(self) -> None:
        if self._batch is not None:
            self._flush_batch(self._batch)

    def _flush_batch(self, batch: _Batch) -> None:
        if self._batch is batch:
            self._batch = None
        if not batch.data:
            return
        data, batch.data = batch.data, []
        requests = batch.requests if batch.keyed else None
        try:
            # The bridge first: once proposed, the outcome must reach it.
            bridge = _bridge.of(running_loop(self._loop))
            pending = self._propose(data, self._on_assign, requests)
        except Exception as exc:
            if self._stats is not None:
                self._stats.failed += len(data)
            batch.fail(exc)
            return
        if self._stats is not None:
            batch.count(self._stats, len(data))
        bridge.then(pending, batch.settle)
