"""The local replica of a group's state machine.

The native apply thread calls `Replica.apply` with committed entries, in log
order, once per batch; queries read the machine under the same lock, so a
query never sees half a batch and always knows the index it stood at. A
query's answer is a copy (through the machine's codec).

A command made with a request id that the group applied within its
``dedupe_window`` is not applied again (`_requests.AppliedRequests`, kept in
every snapshot). While a `call` waits, what ``apply`` returned is kept per
index (`_requests.Results`) for the caller to collect with `result_of`.

The group's machine version (`_versions`) is kept here too: a switch entry
in the log moves it (and calls the machine's ``upgrade`` hook), the
machine's ``active_version`` follows it, and it travels inside every
snapshot.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from ._requests import NOT_KEPT, AppliedRequests, Duplicate, Key, Raised, Results, unwrap, wrap
from ._versions import CONTROL_PREFIX, UnsupportedVersion, supported_version, switch_of
from .codec import MSGPACK, Codec, msgpack_decoder
from .cursor import ApplyContext
from .exceptions import ApplyError, ResultNotKept
from .state_machine import StateMachine

log = logging.getLogger("mosaik")


def fresh_machine(machine: Any) -> Any:
    """A machine in its initial state: ``reset()`` if it has one, else a new
    instance of its class made without arguments."""
    reset = getattr(machine, "reset", None)
    if callable(reset):
        reset()
        return machine
    return type(machine)()


def codec_of(machine: Any) -> Codec:
    codec = getattr(machine, "codec", None)
    return MSGPACK if codec is None else codec


def decoder_of(codec: Codec) -> Callable[[bytes], Any]:
    """What decodes commands on the apply path: the msgpack decoder itself
    for the default codec (a failure there is logged with its index)."""
    return msgpack_decoder() if codec is MSGPACK else codec.decode


Entry = tuple[ApplyContext, bytes, Key | None]
"""A committed command as the native side hands it over: its context, its
bytes and its request key (``None`` without a request id)."""


class Timings(Protocol):
    """Where the apply thread reports how long its work took (`mosaik.metrics`)."""

    def applied(self, seconds: float) -> None: ...

    def snapshotted(self, seconds: float, size: int) -> None: ...


class Replica:
    __slots__ = (
        "applied",
        "codec",
        "decode",
        "label",
        "lock",
        "machine",
        "requests",
        "results",
        "supported",
        "timings",
        "version",
        "version_since",
    )

    def __init__(self, machine: Any, label: str, dedupe_window: int) -> None:
        self.machine = machine
        self.supported = supported_version(machine)
        # The group's machine version, and the index of the switch to it.
        self.version = 1
        self.version_since = 0
        self._show_version()
        self.codec = codec_of(machine)
        self.decode = decoder_of(self.codec)
        self.label = label
        self.lock = threading.Lock()
        self.applied = 0
        self.requests = AppliedRequests(dedupe_window)
        self.results = Results()
        self.timings: Timings | None = None

    def apply(
        self,
        rebuild: bool,
        restore: bytes | None,
        entries: list[Entry],
        last: int,
        take_snapshot: bool,
    ) -> bytes | None:
        """Applies one piece of committed work: first a restore from a
        snapshot or a rebuild from nothing, then ``entries``; returns the
        machine's snapshot when ``take_snapshot`` asks for one."""
        with self.lock:
            if restore is not None:
                self._restore(restore)
            elif rebuild:
                log.warning("group %s: rebuilding the state machine from the log", self.label)
                self.machine = fresh_machine(self.machine)
                self.applied = 0
                self.requests.clear()
                self.results.values.clear()
                self.version, self.version_since = 1, 0
                self._show_version()
            if entries:
                timings = self.timings
                if timings is None:
                    self._apply(entries)
                else:
                    started = time.perf_counter()
                    self._apply(entries)
                    timings.applied(time.perf_counter() - started)
            self.applied = last
            return self._snapshot(last) if take_snapshot else None

    def _restore(self, data: bytes) -> None:
        """Restores the machine and the request table; a failure
        propagates: the machine's state is then unknown and it must not
        apply (or answer) anything more."""
        # Results kept for waiting calls came from the log before the
        # restore; entries after it are applied (and kept) again.
        self.results.values.clear()
        try:
            table, version, snapshot = unwrap(data)
            if version > self.supported:
                raise self._unsupported(version, None)
            self.machine.restore(snapshot)
            if version != self.version:
                self.version, self.version_since = version, 0
            # After restore(): one that replaces the machine's whole state
            # must not take the version back to its class default.
            self._show_version()
            if table is None:
                self.requests.clear()
            else:
                self.requests.restore(table, self.codec)
        except BaseException:
            log.exception("group %s: restoring a snapshot failed", self.label)
            raise

    def _snapshot(self, index: int) -> bytes | None:
        started = time.perf_counter()
        try:
            data = self.machine.snapshot()
        except BaseException:
            log.exception("group %s: snapshot at index %d failed", self.label, index)
            return None
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        if not isinstance(data, bytes):
            log.error(
                "group %s: snapshot() returned %s, not bytes; no snapshot at index %d",
                self.label,
                type(data).__name__,
                index,
            )
            return None
        if self.timings is not None:
            self.timings.snapshotted(time.perf_counter() - started, len(data))
        return wrap(self.requests.encode(index, self.codec), self.version, data)

    def _unsupported(self, version: int, index: int | None) -> UnsupportedVersion:
        at = "in the snapshot restored" if index is None else f"at index {index}"
        return UnsupportedVersion(
            f"the group runs machine version {version} ({at}), but this node's "
            f"{type(self.machine).__name__} applies versions up to {self.supported}: "
            "deploy the new code on this node and restart it"
        )

    def _control(self, request_id: bytes, index: int) -> None:
        """Carries out a control entry of mosaik's own at ``index``."""
        version = switch_of(request_id)
        if version is None or version <= self.version:
            return
        if version > self.supported:
            raise self._unsupported(version, index)
        log.info("group %s: machine version %d from index %d on", self.label, version, index)
        self.version, self.version_since = version, index
        self._show_version()
        upgrade = getattr(self.machine, "upgrade", None)
        if callable(upgrade):
            # Like a failing apply: logged, and the group goes on (every
            # member fails the same way at the same index).
            try:
                upgrade(version)
            except Exception:
                log.exception(
                    "group %s: upgrade(%d) failed at index %d", self.label, version, index
                )

    def _show_version(self) -> None:
        """Sets the machine's ``active_version`` to the group's version, for
        machines with versions (others are left untouched)."""
        if self.supported > 1:
            self.machine.active_version = self.version

    def _apply_batches(self, entries: list[Entry]) -> None:
        """``entries`` to ``apply_batch`` without the repeats of requests
        applied within the window (each recorded for a waiting call); a
        batch is cut before a request repeated inside it, so the repeat
        finds the first in the table."""
        run: list[Entry] = []
        keys: set[Key] = set()
        for entry in entries:
            key = entry[2]
            if key is not None:
                if key[0].startswith(CONTROL_PREFIX):
                    self._apply_batch(run)
                    run, keys = [], set()
                    self._control(key[0], entry[0].log_position.index)
                    continue
                if key in keys:
                    self._apply_batch(run)
                    run, keys = [], set()
                index = entry[0].log_position.index
                first = self.requests.lookup(key, index)
                if first is not None:
                    if self.results.wants(index):
                        self.results.values[index] = Duplicate(*first)
                    continue
                keys.add(key)
            run.append(entry)
        self._apply_batch(run)

    def _apply(self, entries: list[Entry]) -> None:
        machine = self.machine
        if getattr(type(machine), "apply_batch", StateMachine.apply_batch) is not (
            StateMachine.apply_batch
        ):
            self._apply_batches(entries)
            return
        decode = self.decode
        apply = machine.apply
        # Results are kept above this index (a call waits for one), or not at all.
        floor = self.results.floor()
        keep, above = (False, 0) if floor is None else (True, floor)
        values = self.results.values
        requests = self.requests
        for ctx, data, key in entries:
            outcome: Any
            if key is not None:
                if key[0].startswith(CONTROL_PREFIX):
                    self._control(key[0], ctx.log_position.index)
                    continue
                first = requests.lookup(key, ctx.log_position.index)
                if first is not None:
                    if keep and ctx.log_position.index > above:
                        values[ctx.log_position.index] = Duplicate(*first)
                    continue
            # BaseException too: a command that raises SystemExit must not
            # take the rest of the batch with it on this node only.
            try:
                outcome = apply(decode(data), ctx)
            except BaseException as error:
                log.exception(
                    "group %s: apply failed at index %d", self.label, ctx.log_position.index
                )
                outcome = Raised(error)
            if keep and ctx.log_position.index > above:
                values[ctx.log_position.index] = outcome
            if key is not None:
                requests.record(key, ctx.log_position.index, outcome)

    def _apply_batch(self, entries: list[Entry]) -> None:
        # Each entry is decoded on its own: one that does not decode is left
        # out (and logged with its index) whatever batch it came in. The
        # outcomes are recorded in log order afterwards.
        outcomes: list[Any] = [None] * len(entries)
        decoded_at: list[int] = []
        commands: list[Any] = []
        decode = self.decode
        for i, (ctx, data, _) in enumerate(entries):
            try:
                commands.append(decode(data))
                decoded_at.append(i)
            except BaseException as error:
                log.exception(
                    "group %s: apply failed at index %d", self.label, ctx.log_position.index
                )
                outcomes[i] = Raised(error)
        if commands:
            ctx = entries[decoded_at[-1]][0]
            values: list[Any]
            try:
                values = self._batch_outcomes(
                    self.machine.apply_batch(commands, ctx), len(commands)
                )
            except BaseException as error:
                log.exception(
                    "group %s: apply_batch failed for indices %d..%d",
                    self.label,
                    entries[decoded_at[0]][0].log_position.index,
                    ctx.log_position.index,
                )
                values = [Raised(error)] * len(commands)
            for i, value in zip(decoded_at, values, strict=True):
                outcomes[i] = value
        for entry, outcome in zip(entries, outcomes, strict=True):
            self._outcome(entry, outcome)

    @staticmethod
    def _batch_outcomes(returned: Any, count: int) -> list[Any]:
        """One outcome per command from what ``apply_batch`` returned:
        ``None`` (nothing) or a list of ``count`` values."""
        if returned is None:
            return [None] * count
        if isinstance(returned, list) and len(returned) == count:
            return returned
        raise TypeError(
            f"apply_batch must return None or a list of {count} values, "
            f"not {type(returned).__name__}"
        )

    def _outcome(self, entry: Entry, outcome: Any) -> None:
        index = entry[0].log_position.index
        if self.results.wants(index):
            self.results.values[index] = outcome
        if entry[2] is not None:
            self.requests.record(entry[2], index, outcome)

    # -- results for callers ------------------------------------------------

    def watch(self, committed: int) -> list[Any]:
        """Starts keeping results for a call about to propose, while the
        node's commit index is ``committed``: the call's command will sit
        above every index committed anywhere by then."""
        return self.results.watch(committed)

    def unwatch(self, ticket: list[Any]) -> None:
        self.results.unwatch(ticket)

    def result_of(self, index: int) -> tuple[int, Any]:
        """The index that applied the command at ``index`` (an earlier one
        for a repeated request) and what ``apply`` returned for it there.
        Raises `ApplyError` if ``apply`` raised, `ResultNotKept` if this
        node does not know the value (it reached the command in a snapshot)."""
        outcome = self.results.values.get(index, NOT_KEPT)
        first = index
        if isinstance(outcome, Duplicate):
            first, outcome = outcome.first, outcome.outcome
        if isinstance(outcome, Raised):
            error = ApplyError(f"apply raised for the command at index {first}", first)
            raise error from outcome.error
        if outcome is NOT_KEPT:
            raise ResultNotKept(
                f"the command at index {first} is committed and applied, but this node "
                "got it inside a snapshot and does not know what apply returned",
                first,
            )
        return first, outcome

    def first_of(self, index: int) -> int:
        """The index that applied the command at ``index``: an earlier one
        when it repeated a request, else ``index`` itself."""
        outcome = self.results.values.get(index)
        return outcome.first if isinstance(outcome, Duplicate) else index

    # -- queries ------------------------------------------------------------

    def query(self, query: Any) -> tuple[Any, int]:
        """The machine's answer and the index it stood at. The answer is a
        copy made through the machine's codec under the lock, so a caller
        that changes it changes nothing in the machine."""
        with self.lock:
            return self._answer(query)

    def query_if_free(self, query: Any) -> tuple[Any, int] | None:
        """`query`, unless the apply thread holds the machine now (None)."""
        if not self.lock.acquire(blocking=False):
            return None
        try:
            return self._answer(query)
        finally:
            self.lock.release()

    def _answer(self, query: Any) -> tuple[Any, int]:
        data = self.codec.encode(self.machine.query(query))
        return self.codec.decode(data), self.applied
