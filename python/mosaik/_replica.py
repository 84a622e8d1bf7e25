"""The local replica of a group's state machine.

The native apply thread calls `Replica.apply` with committed entries, in log
order, once per batch; queries read the machine under the same lock, so a
query never sees half a batch and always knows the index it stood at. A
query's answer is a copy (through the machine's codec).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from .codec import MSGPACK, Codec, msgpack_decoder
from .cursor import ApplyContext
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


class Replica:
    __slots__ = ("applied", "codec", "decode", "label", "lock", "machine")

    def __init__(self, machine: Any, label: str) -> None:
        self.machine = machine
        self.codec = codec_of(machine)
        self.decode = decoder_of(self.codec)
        self.label = label
        self.lock = threading.Lock()
        self.applied = 0

    def apply(
        self,
        rebuild: bool,
        restore: bytes | None,
        entries: list[tuple[ApplyContext, bytes]],
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
            if entries:
                self._apply(entries)
            self.applied = last
            return self._snapshot(last) if take_snapshot else None

    def _restore(self, data: bytes) -> None:
        """Restores the machine; a failure propagates: the machine's state
        is then unknown and it must not apply (or answer) anything more."""
        try:
            self.machine.restore(data)
        except BaseException:
            log.exception("group %s: restoring a snapshot failed", self.label)
            raise

    def _snapshot(self, index: int) -> bytes | None:
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
        return data

    def _apply(self, entries: list[tuple[ApplyContext, bytes]]) -> None:
        machine = self.machine
        if getattr(type(machine), "apply_batch", StateMachine.apply_batch) is not (
            StateMachine.apply_batch
        ):
            self._apply_batch(entries)
            return
        decode = self.decode
        apply = machine.apply
        for ctx, data in entries:
            # BaseException too: a command that raises SystemExit must not
            # take the rest of the batch with it on this node only.
            try:
                apply(decode(data), ctx)
            except BaseException:
                log.exception(
                    "group %s: apply failed at index %d", self.label, ctx.log_position.index
                )

    def _apply_batch(self, entries: list[tuple[ApplyContext, bytes]]) -> None:
        # Each entry is decoded on its own: one that does not decode is left
        # out (and logged with its index) whatever batch it came in.
        commands = []
        decode = self.decode
        for ctx, data in entries:
            try:
                commands.append(decode(data))
            except BaseException:
                log.exception(
                    "group %s: apply failed at index %d", self.label, ctx.log_position.index
                )
        if not commands:
            return
        ctx = entries[-1][0]
        try:
            self.machine.apply_batch(commands, ctx)
        except BaseException:
            log.exception(
                "group %s: apply_batch failed for indices %d..%d",
                self.label,
                entries[0][0].log_position.index,
                ctx.log_position.index,
            )

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
