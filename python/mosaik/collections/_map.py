"""`Map[K, V]`: a replicated dict."""

from __future__ import annotations

from collections.abc import Coroutine, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar, overload

from ._base import Collection, CollectionMachine, copy_out, hashable, same

K = TypeVar("K")
V = TypeVar("V")
D = TypeVar("D")

_INSERT, _REMOVE, _EXTEND, _CLEAR, _SWAP = range(5)
_ABSENT = object()


class MapMachine(CollectionMachine):
    """A dict; snapshots as one flat list ``[k1, v1, k2, v2, ...]``."""

    kind = "map"

    def reset(self) -> None:
        self.data: dict[Any, Any] = {}

    def dump(self) -> list[Any]:
        flat: list[Any] = []
        for pair in self.data.items():
            flat.extend(pair)
        return flat

    def load(self, state: list[Any]) -> None:
        self.data = dict(zip(state[::2], state[1::2], strict=True))

    def contents(self) -> dict[Any, Any]:
        return self.data

    def apply(self, command: Any, ctx: Any) -> Any:
        if command[0] == _INSERT:  # the common write, without the dispatch
            self.data[command[1]] = command[2]
            return None
        return self.OPS[command[0]](self, *command[1:])

    def _insert(self, key: Any, value: Any) -> None:
        self.data[key] = value

    def _remove(self, key: Any) -> None:
        self.data.pop(key, None)

    def _extend(self, flat: list[Any]) -> None:
        self.data.update(zip(flat[::2], flat[1::2], strict=True))

    def _clear(self) -> None:
        self.data = {}

    def _swap(self, key: Any, expected: Any, new: Any) -> bool:
        data = self.data
        if expected is None:
            if key in data:
                return False
        elif key not in data or not same(data[key], expected):
            return False
        if new is None:
            data.pop(key, None)
        else:
            data[key] = new
        return True

    OPS = (_insert, _remove, _extend, _clear, _swap)


class Map(Collection, Generic[K, V]):
    """A replicated ``dict`` whose keys and values are encoded with the
    default codec (a key has to be hashable after decoding, so lists and
    dicts cannot serve as keys).

    Example:
        ```python
        orders = Map[str, int].writer(net, "orders")
        v = await orders.insert("apples", 3)     # the version it committed at
        orders.get("apples")                     # 3, read here without await
        ```
    """

    __slots__ = ()
    _machine_type = MapMachine

    # -- local reads --------------------------------------------------------

    @overload
    def get(self, key: K) -> V | None: ...
    @overload
    def get(self, key: K, default: D) -> V | D: ...
    def get(self, key: K, default: Any = None) -> Any:
        """The value at ``key`` here, or ``default``."""
        value = self._machine.data.get(key, _ABSENT)
        return default if value is _ABSENT else copy_out(value)

    def __getitem__(self, key: K) -> V:
        value: V = copy_out(self._machine.data[key])
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._machine.data

    def __len__(self) -> int:
        return len(self._machine.data)

    def __iter__(self) -> Iterator[K]:
        return iter(self.keys())

    def keys(self) -> list[K]:
        """The keys here, as a list (a snapshot, not a live view)."""
        return self._locked(lambda m: list(m.data))

    def values(self) -> list[V]:
        """Copies of the values here, as a list, in the keys' order."""
        return self._locked(lambda m: [copy_out(v) for v in m.data.values()])

    def items(self) -> list[tuple[K, V]]:
        """The ``(key, value)`` pairs here, as a list; the values are copies."""
        return self._locked(lambda m: [(k, copy_out(v)) for k, v in m.data.items()])

    # -- writes -------------------------------------------------------------

    def insert(
        self, key: K, value: V, *, request_id: bytes | None = None
    ) -> Coroutine[Any, Any, int]:
        """Sets ``key`` to ``value``; the version."""
        # The checks of `_execute` and `hashable`, inlined: the hot write.
        if not self._writable:
            self._check_writable()
        try:
            hash(key)
        except TypeError:
            hashable(key, "key")
        return self._group.execute([_INSERT, key, value], request_id=request_id)

    def remove(self, key: K, *, request_id: bytes | None = None) -> Coroutine[Any, Any, int]:
        """Removes ``key`` if present; the version."""
        return self._execute([_REMOVE, hashable(key, "key")], request_id)

    def extend(
        self,
        items: Mapping[K, V] | Map[K, V] | Iterable[tuple[K, V]],
        *,
        request_id: bytes | None = None,
    ) -> Coroutine[Any, Any, int]:
        """Sets every pair at once (as ``dict.update``: from a mapping, another
        `Map`, or pairs), in one command; the version."""
        # A Map iterates over its keys, as a dict does: take its pairs.
        pairs = [(k, items[k]) for k in items.keys()] if isinstance(items, Mapping | Map) else items  # noqa: SIM118
        flat: list[Any] = []
        for key, value in pairs:
            flat.append(hashable(key, "key"))
            flat.append(value)
        return self._execute([_EXTEND, flat], request_id)

    def clear(self, *, request_id: bytes | None = None) -> Coroutine[Any, Any, int]:
        """Removes every key; the version."""
        return self._execute([_CLEAR], request_id)

    async def compare_exchange(
        self, key: K, expected: V | None, new: V | None, *, request_id: bytes | None = None
    ) -> bool:
        """Sets ``key`` to ``new`` if it holds ``expected`` (equal and of
        the same types) when the command applies. ``None`` stands for
        absent: ``expected=None`` only if the key is absent, ``new=None``
        removes it. A failed exchange commits as a no-op and returns False."""
        result: bool = await self._call([_SWAP, hashable(key, "key"), expected, new], request_id)
        return result
