"""`Once[T]`: a value set at most once, which nodes can wait for."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Generic, TypeVar

from ._base import Collection, CollectionMachine, copy_out

T = TypeVar("T")

_SET = 0


class OnceMachine(CollectionMachine):
    """The first value set (None until then); snapshots as ``[is_set, value]``."""

    kind = "once"

    def reset(self) -> None:
        self.state: tuple[bool, Any] = (False, None)

    def dump(self) -> list[Any]:
        return list(self.state)

    def load(self, state: list[Any]) -> None:
        self.state = (bool(state[0]), state[1])

    def contents(self) -> Any:
        return self.state[1]

    def _set(self, value: Any) -> bool:
        if self.state[0]:
            return False
        self.state = (True, value)
        return True

    OPS = (_set,)


class Once(Collection, Generic[T]):
    """A value that is set once and then never changes (later sets are
    ignored): an election of a single winner, a configuration published once.

    Example:
        ```python
        winner = Once[str].writer(net, "winner")
        await winner.set("node-a")
        await winner.wait()          # "node-a", on every node, forever
        ```
    """

    __slots__ = ()
    _machine_type = OnceMachine

    def get(self) -> T | None:
        """The value here, None until it is set."""
        value: T | None = copy_out(self._machine.state[1])
        return value

    @property
    def is_set(self) -> bool:
        """Whether this node applied a set."""
        is_set: bool = self._machine.state[0]
        return is_set

    async def wait(self) -> T:
        """The value, once this node applied the set."""
        await self._until(lambda m: m.state[0], None)
        value: T = copy_out(self._machine.state[1])
        return value

    def set(self, value: T, *, request_id: bytes | None = None) -> Coroutine[Any, Any, int]:
        """Sets the value unless it is set already (then nothing changes); the version."""
        if value is None:
            raise ValueError("Once.set takes a value, not None (get() returns None until set)")
        return self._execute([_SET, value], request_id)
