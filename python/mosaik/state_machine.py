"""Replicated state machines written as ordinary Python classes."""

from __future__ import annotations

from typing import Any, ClassVar

from ._native import Digest, LeadershipPreference, LogReplaySync
from .exceptions import ConfigError


class StateMachine:
    """Base class of replicated state machines.

    Subclasses define ``signature()``, ``apply(command, ctx)`` and
    ``query(query)``; the other methods have defaults.

    Snapshots are opt-in: a machine that defines ``snapshot() -> bytes`` and
    ``restore(data: bytes)`` is snapshotted after every ``snapshot_every``
    log entries (the same indices on every node), the log is compacted
    behind the previous snapshot, and a node whose gap was compacted away
    restores a snapshot fetched from its peers before replaying the rest.
    ``restore`` replaces the machine's whole state with the one ``snapshot``
    described (the machine object stays the same). Without the two methods
    the log is kept whole.

    Versions let a running group move to new code without a new `GroupId`
    (see docs/upgrades.md): ``version`` is the newest machine version this
    code applies, and the group runs one version at a time, starting at 1
    and switched by `Group.upgrade` at one committed index on every member.
    mosaik keeps ``active_version`` at the group's version (after a switch,
    a restore and a rebuild), and calls ``upgrade`` at the switch, before
    the next entry is applied.
    """

    snapshot_every: ClassVar[int] = 100_000
    """Log entries between two snapshots, for a machine that defines
    ``snapshot`` and ``restore`` (an int of at least 1)."""
    version: ClassVar[int] = 1
    """The newest machine version this code applies (not part of the
    `GroupId`); `Group.upgrade` switches the group to it once every member
    runs such code."""
    active_version: int = 1
    """The machine version the group runs at the entry being applied; set
    by mosaik for a machine whose ``version`` is above 1 (do not assign it)."""

    def upgrade(self, version: int) -> None:
        """Called on the apply thread at the committed entry that switches
        the group to machine ``version`` (`active_version` already says
        it); by default it does nothing. Override it to migrate the state,
        deterministically: every member calls it at the same index. Like a
        failing ``apply``, an exception is logged and the group goes on.

        Example:
            ```python
            def upgrade(self, version):
                if version == 2:
                    self.items = {k: {"qty": v} for k, v in self.items.items()}
            ```
        """

    def signature(self) -> str | bytes:
        """Names the machine (required); part of the `GroupId`, so nodes
        whose signatures differ never bond. A new signature starts a new,
        empty group; to change the code of a running group, raise `version`
        instead."""
        raise NotImplementedError

    def apply(self, command: Any, ctx: Any) -> None:
        """Applies one committed ``command`` (decoded by the codec) at the
        position ``ctx`` (an `ApplyContext`) describes; what it returns is
        the command's result for `Group.call` on this node (required).

        Called on every node, in log order, once per index, on the group's
        apply thread: it must be deterministic. An exception is logged and
        becomes the command's result (`ApplyError` for `call`); the state
        it left stays.

        Example:
            ```python
            def apply(self, command, ctx):
                self.value += command["add"]
                return self.value
            ```
        """
        raise NotImplementedError

    def apply_batch(self, commands: list[Any], ctx: Any) -> None:
        """Applies ``commands`` in order; override to apply them at once."""
        for command in commands:
            self.apply(command, ctx)

    def query(self, query: Any) -> Any:
        """Answers ``query`` from the current state, without changing it
        (required). The answer reaches the caller as a copy through the
        codec, so it must be encodable; an exception reaches the caller."""
        raise NotImplementedError

    def state_sync(self) -> LogReplaySync:
        """How a node that is behind catches up; its settings are part of
        the `GroupId`. Default: `LogReplaySync()`."""
        return LogReplaySync()

    def leadership_preference(self) -> LeadershipPreference:
        """How eagerly this node stands for leader; asked once, at join,
        and not part of the `GroupId`. Default: ``NORMAL``."""
        return LeadershipPreference.NORMAL


class NoOp(StateMachine):
    """The machine behind a plain `join()`: commands are `None`, state is nothing."""

    def signature(self) -> str:
        """``"mosaik_noop_state_machine"``."""
        return "mosaik_noop_state_machine"

    def apply(self, command: Any, ctx: Any) -> None:
        """Does nothing."""
        return None

    def query(self, query: Any) -> None:
        """Answers ``None``."""
        return None


_REQUIRED = ("signature", "apply", "query")


def snapshot_interval(machine: object) -> int:
    """Entries between two snapshots of ``machine``, 0 if it takes none."""
    kind = type(machine)
    if not (callable(getattr(kind, "snapshot", None)) and callable(getattr(kind, "restore", None))):
        return 0
    every = getattr(machine, "snapshot_every", StateMachine.snapshot_every)
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ConfigError(
            f"{kind.__name__}.snapshot_every must be an int of at least 1, not {every!r}"
        )
    return every


def check_machine(machine: object) -> None:
    """`TypeError` unless ``machine`` defines every required method."""
    for name in _REQUIRED:
        method = getattr(type(machine), name, None)
        if not callable(method) or method is getattr(StateMachine, name):
            raise TypeError(
                f"{type(machine).__name__} is not a state machine: it must define {name}()"
            )


def machine_signature(machine: object) -> Digest:
    """The Digest of ``machine.signature()`` (a str or bytes)."""
    sig = machine.signature()  # type: ignore[attr-defined]
    if isinstance(sig, str):
        return Digest.from_str(sig)
    if isinstance(sig, bytes):
        return Digest.from_bytes(sig)
    raise TypeError(
        f"{type(machine).__name__}.signature() must return str or bytes, not {type(sig).__name__}"
    )


__all__ = ["LeadershipPreference", "NoOp", "StateMachine"]
