"""`When` and `CursorWatcher`: awaitable conditions on a group's status.

Every awaitable can be cancelled; the baseline of ``leader_changed``,
``advanced``, ``changed`` and ``reverted`` is taken when the method is
called.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from . import _native
from ._native import PeerId
from .cursor import Cursor

T = TypeVar("T", int, Cursor)


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


class CursorWatcher(Generic[T]):
    """Waits on the committed index (ints) or the log position (Cursors)."""

    __slots__ = ("_kind", "_native")

    def __init__(self, native: _native.NativeGroup, kind: str) -> None:
        self._native = native
        self._kind = kind

    def _convert(self, value: Any) -> T:
        if self._kind == "log":
            return Cursor(*value)  # type: ignore[return-value]
        return value  # type: ignore[no-any-return]

    async def reaches(self, target: int | range | Cursor) -> T:
        """Resolves once ``target`` (an index, or a range's last) is reached;
        for the committed index, entries up to it are applied here by then."""
        value = await self._native.wait_for(f"{self._kind}_reaches", _last_index(target))
        return self._convert(value)

    async def advanced(self) -> T:
        return self._convert(await self._native.wait_for(f"{self._kind}_advanced"))

    async def changed(self) -> T:
        return self._convert(await self._native.wait_for(f"{self._kind}_changed"))

    async def reverted(self) -> T:
        return self._convert(await self._native.wait_for(f"{self._kind}_reverted"))


class When:
    """Reactive status of one group on this node."""

    __slots__ = ("_native",)

    def __init__(self, native: _native.NativeGroup) -> None:
        self._native = native

    async def leader_elected(self) -> PeerId:
        """The leader; at once if one is known."""
        leader: PeerId = await self._native.wait_for("leader_elected")
        return leader

    async def leader_changed(self) -> PeerId:
        """The next leader different from the one known at the call."""
        leader: PeerId = await self._native.wait_for("leader_changed")
        return leader

    async def leader_is(self, peer_id: PeerId) -> PeerId:
        leader: PeerId = await self._native.wait_for("leader_is", None, peer_id)
        return leader

    async def is_leader(self) -> None:
        await self._native.wait_for("is_leader")

    async def is_follower(self) -> None:
        """Not the leader, whether a leader is known or not."""
        await self._native.wait_for("is_follower")

    async def online(self) -> None:
        """Leader, or a follower with a known leader that is not catching up."""
        await self._native.wait_for("online")

    async def offline(self) -> None:
        await self._native.wait_for("offline")

    def committed(self) -> CursorWatcher[int]:
        return CursorWatcher(self._native, "committed")

    def log(self) -> CursorWatcher[Cursor]:
        return CursorWatcher(self._native, "log")


__all__ = ["CursorWatcher", "When"]
