"""`When` and `CursorWatcher`: awaitable conditions on a group's status.

Each method starts waiting when it is called (not when first awaited), so
the baseline of ``leader_changed``, ``advanced``, ``changed`` and
``reverted`` is the status at the call. Every awaitable can be cancelled.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Generic, TypeVar

from . import _bridge, _native
from ._native import Change, PeerId, Until
from .cursor import Cursor

T = TypeVar("T")
V = TypeVar("V", int, Cursor)


class Waiting(Generic[T]):
    """A native wait whose value is converted when it arrives; awaitable once."""

    __slots__ = ("_convert", "_pending")

    def __init__(self, pending: _native.Pending[Any], convert: Callable[[Any], T]) -> None:
        self._pending = pending
        self._convert = convert

    def __await__(self) -> Generator[Any, Any, T]:
        value = yield from _bridge.watch(self._pending).__await__()
        return self._convert(value)


def _last_index(target: int | range | Cursor) -> int:
    if isinstance(target, range):
        if len(target) == 0:
            raise ValueError("reaches() needs a non-empty range")
        return target[-1]
    if isinstance(target, Cursor):
        return target.index
    if isinstance(target, bool) or not isinstance(target, int) or target < 0:
        raise TypeError(f"reaches() takes an index, a range or a Cursor, not {target!r}")
    return target


def _same(value: Any) -> Any:
    return value


def _nothing(value: Any) -> None:
    return None


class CursorWatcher(Generic[V]):
    """Waits on the committed index (ints) or the log position (Cursors).

    Get one from `When.committed` or `When.log`.

    Example:
        ```python
        fed = await group.feed_many(commands)        # indices assigned
        await group.when().committed().reaches(fed)  # now committed and applied here
        ```
    """

    __slots__ = ("_change", "_native", "_reaches")

    def __init__(
        self,
        native: _native.NativeGroup,
        reaches: Callable[[int], Until],
        change: Callable[[Change], Until],
    ) -> None:
        self._native = native
        self._reaches = reaches
        self._change = change

    def _wait(self, until: Until) -> Waiting[V]:
        return Waiting(self._native.wait_for(until), _same)

    def reaches(self, target: int | range | Cursor) -> Waiting[V]:
        """Resolves once ``target`` (an index, or a range's last) is reached;
        for the committed index, entries up to it are applied here by then."""
        return self._wait(self._reaches(_last_index(target)))

    def advanced(self) -> Waiting[V]:
        """Resolves to the new value once it moves forward from where it
        was at the call."""
        return self._wait(self._change(Change.ADVANCED))

    def changed(self) -> Waiting[V]:
        """Resolves to the new value once it differs from where it was at
        the call, in either direction."""
        return self._wait(self._change(Change.CHANGED))

    def reverted(self) -> Waiting[V]:
        """Resolves to the new value once it moves back from where it was at
        the call. The log position moves back when a new leader replaces
        entries that were never committed. The committed index moves back
        only with ``min_quorum`` 1, when partitioned sides meet again and
        this node's side lost: its state machine is then rebuilt from the
        surviving log."""
        return self._wait(self._change(Change.REVERTED))


class When:
    """Reactive status of one group on this node: `Group.when()`.

    Every method returns an awaitable that starts waiting at the call and
    can be cancelled (``asyncio.wait_for``); waits end with
    `GroupTerminated` if the group is left.

    Example:
        ```python
        leader = await group.when().leader_elected()
        await asyncio.wait_for(group.when().online(), timeout=10)
        if group.is_leader():
            await group.when().is_follower()     # until leadership moves
        ```
    """

    __slots__ = ("_native",)

    def __init__(self, native: _native.NativeGroup) -> None:
        self._native = native

    def _peer(self, until: Until) -> Waiting[PeerId]:
        return Waiting(self._native.wait_for(until), _same)

    def _flag(self, until: Until) -> Waiting[None]:
        return Waiting(self._native.wait_for(until), _nothing)

    def leader_elected(self) -> Waiting[PeerId]:
        """The leader; at once if one is known."""
        return self._peer(Until.leader_elected())

    def leader_changed(self) -> Waiting[PeerId]:
        """The next leader different from the one known at the call."""
        return self._peer(Until.leader_changed())

    def leader_is(self, peer_id: PeerId) -> Waiting[PeerId]:
        """Resolves once ``peer_id`` is the leader this node knows."""
        return self._peer(Until.leader_is(peer_id))

    def is_leader(self) -> Waiting[None]:
        """Resolves once this node leads the group."""
        return self._flag(Until.is_leader())

    def is_follower(self) -> Waiting[None]:
        """Not the leader, whether a leader is known or not."""
        return self._flag(Until.is_follower())

    def online(self) -> Waiting[None]:
        """Resolves once this node is online: it leads, or it follows a
        leader it knows of and is not catching up."""
        return self._flag(Until.online())

    def offline(self) -> Waiting[None]:
        """Resolves once this node is not online: a candidate, without a
        known leader, or catching up."""
        return self._flag(Until.offline())

    def committed(self) -> CursorWatcher[int]:
        """The committed index; ``reaches`` waits until this node applied it."""
        return CursorWatcher(self._native, Until.applied, Until.committed)

    def log(self) -> CursorWatcher[Cursor]:
        """The position (term and index) of the last entry of this node's
        log, committed or not; its waits return `Cursor`s."""
        return CursorWatcher(self._native, Until.log_reaches, Until.log)


__all__ = ["CursorWatcher", "Waiting", "When"]
