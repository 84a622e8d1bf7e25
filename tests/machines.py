"""The replicated counters that tests and benchmarks share.

Tests import this module as ``machines``: pytest puts ``tests/`` on
``sys.path``, and so does running a script of ``tests/`` by its path (the
node processes tests start). Benchmarks put ``tests/`` on ``sys.path``
themselves before importing it.

A command is ``{"add": n}`` (what tests send) or a bare int ``n`` (what
benchmarks send: one byte of msgpack for small ``n``); either adds ``n``.
"""

from __future__ import annotations

from typing import Any

import mosaik

#: Entries between two snapshots of a `SnapshotCounter`, unless it is told.
SNAPSHOT_EVERY = 25


def amount(command: Any) -> int:
    """What ``command`` adds."""
    return command if type(command) is int else command["add"]


class Counter(mosaik.StateMachine):
    """Adds up its commands, one `apply` call each; every query returns the
    total, except ``"boom"``, which raises (a failing query handler).

    With ``record=True``, ``applied`` lists the log index of every command
    applied, so that a test can see none applied twice or out of order;
    benchmarks leave it off, so that a million commands cost them neither
    time nor memory.
    """

    def __init__(self, *, record: bool = False) -> None:
        self.value = 0
        self.record = record
        self.applied: list[int] = []

    def signature(self) -> str:
        return "counter_v1"

    def apply(self, command: Any, ctx: mosaik.ApplyContext) -> None:
        self.value += amount(command)
        if self.record:
            self.applied.append(ctx.log_position.index)

    def query(self, query: Any) -> Any:
        if query == "boom":
            raise RuntimeError("query handler failed")
        return self.value

    def reset(self) -> None:
        """Back to the initial state, keeping the options (a rebuild from
        the log calls this instead of making a new machine)."""
        self.value = 0
        self.applied.clear()


class BatchCounter(Counter):
    """A `Counter` that takes each committed batch in one `apply_batch` call;
    ``batch_sizes`` holds the sizes it was given. A batch comes with the
    context of its last command only, so with ``record=True`` ``applied``
    gets one index per batch: its last."""

    def __init__(self, *, record: bool = False) -> None:
        super().__init__(record=record)
        self.batch_sizes: set[int] = set()

    def apply_batch(self, commands: list[Any], ctx: mosaik.ApplyContext) -> None:
        self.value += sum(map(amount, commands))
        self.batch_sizes.add(len(commands))
        if self.record:
            self.applied.append(ctx.log_position.index)


class SnapshotCounter(Counter):
    """A `Counter` that snapshots its total (as text) every ``snapshot_every``
    entries; ``restored`` lists the totals it restored from snapshots."""

    def __init__(self, *, snapshot_every: int = SNAPSHOT_EVERY, record: bool = False) -> None:
        super().__init__(record=record)
        self.snapshot_every = snapshot_every
        self.restored: list[int] = []

    def snapshot(self) -> bytes:
        return str(self.value).encode()

    def restore(self, data: bytes) -> None:
        self.value = int(data)
        self.restored.append(self.value)
