"""`Set[T]`: a replicated set."""

from __future__ import annotations

from collections.abc import Coroutine, Iterable, Iterator
from typing import Any, Generic, TypeVar

from ._base import Collection, CollectionMachine, hashable

T = TypeVar("T")

_INSERT, _REMOVE, _EXTEND, _CLEAR = range(4)


class SetMachine(CollectionMachine):
    """A set; snapshots as one list."""

    kind = "set"

    def reset(self) -> None:
        self.members: set[Any] = set()

    def dump(self) -> list[Any]:
        return list(self.members)

    def load(self, state: list[Any]) -> None:
        self.members = set(state)

    def contents(self) -> list[Any]:
        return list(self.members)

    def _insert(self, member: Any) -> None:
        self.members.add(member)

    def _remove(self, member: Any) -> None:
        self.members.discard(member)

    def _extend(self, members: list[Any]) -> None:
        self.members.update(members)

    def _clear(self) -> None:
        self.members = set()

    OPS = (_insert, _remove, _extend, _clear)


class Set(Collection, Generic[T]):
    """A replicated ``set`` (members must be hashable once decoded).

    Example:
        ```python
        seen = Set[str].writer(net, "seen")
        await seen.insert("a")
        "a" in seen          # True
        ```
    """

    __slots__ = ()
    _machine_type = SetMachine

    def __contains__(self, member: object) -> bool:
        return member in self._machine.members

    def __len__(self) -> int:
        return len(self._machine.members)

    def __iter__(self) -> Iterator[T]:
        return iter(self._locked(lambda m: list(m.members)))

    def insert(self, member: T, *, request_id: bytes | None = None) -> Coroutine[Any, Any, int]:
        """Adds ``member``; the version."""
        return self._execute([_INSERT, hashable(member, "set member")], request_id)

    def remove(self, member: T, *, request_id: bytes | None = None) -> Coroutine[Any, Any, int]:
        """Removes ``member`` if present; the version."""
        return self._execute([_REMOVE, hashable(member, "set member")], request_id)

    def extend(
        self, members: Iterable[T], *, request_id: bytes | None = None
    ) -> Coroutine[Any, Any, int]:
        """Adds every member, in one command; the version."""
        listed = [hashable(m, "set member") for m in members]
        return self._execute([_EXTEND, listed], request_id)

    def clear(self, *, request_id: bytes | None = None) -> Coroutine[Any, Any, int]:
        """Removes every member; the version."""
        return self._execute([_CLEAR], request_id)
