"""What every collection shares: its identity, its group, local reads and writes.

A collection is an ordinary group whose state machine is one of the
`CollectionMachine` subclasses, and a handle (`Collection`) that reads that
machine in place and writes through the group's `execute` and `call`.
Commands are short lists, ``[op, *arguments]``, where ``op`` indexes the
machine's ``OPS`` table; they travel through the default codec.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Self, TypeVar

from .._native import ConsensusConfig
from ..codec import MSGPACK
from ..exceptions import CommandError, ConfigError, ResultNotKept
from ..keys import GroupKey
from ..state_machine import LeadershipPreference, StateMachine
from ..storage import DiskLogStore, InMemoryLogStore, LogStore
from ..when import CursorWatcher

if TYPE_CHECKING:
    from .._replica import Replica
    from ..group import Group
    from ..network import Network

T = TypeVar("T")

# Values the machines may hand out as they hold them: nothing a caller does
# to one of these can change the replica.
_IMMUTABLE = frozenset((type(None), bool, int, float, str, bytes))


def copy_out(value: T) -> T:
    """``value`` as a caller may keep it: itself when immutable, else a copy
    made through the codec (so changing it never changes the replica)."""
    if type(value) in _IMMUTABLE:
        return value
    copy: T = MSGPACK.decode(MSGPACK.encode(value))
    return copy


def hashable(value: T, what: str) -> T:
    """``value`` if it can be a key or a set member, else `TypeError` at the call."""
    try:
        hash(value)
    except TypeError:
        raise TypeError(f"a {what} must be hashable, not {type(value).__name__}") from None
    return value


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down, as the codec would
    carry them: ``1``, ``1.0`` and ``True`` are three different values."""
    if type(a) is not type(b):
        return False
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return a.keys() == b.keys() and all(same(v, b[k]) for k, v in a.items())
    return bool(a == b)


class ReadOnlyError(CommandError):
    """A write on a collection opened with ``reader()``."""


class CollectionMachine(StateMachine):
    """The state machine of one kind of collection.

    Subclasses name their ``kind``, list their operations in ``OPS`` (the
    command ``[i, *args]`` calls ``OPS[i](self, *args)``, and what it
    returns is the command's result), and define ``reset`` (an empty state),
    ``dump``/``load`` (the state as plain codec values, for snapshots) and
    ``contents`` (the state as plain Python, the answer to any query).
    Every change of state replaces or mutates attributes in single steps, so
    a local read never sees a state older than one it saw before.
    """

    kind: ClassVar[str]
    OPS: ClassVar[tuple[Callable[..., Any], ...]]
    codec = MSGPACK

    def __init__(self, name: str, observer: bool, consensus: ConsensusConfig) -> None:
        self.name = name
        self.observer = observer
        self.consensus = consensus
        self.reset()

    def signature(self) -> str:
        return f"mosaik.collections.{self.kind}.v1/{self.name}"

    def leadership_preference(self) -> LeadershipPreference:
        return LeadershipPreference.OBSERVER if self.observer else LeadershipPreference.NORMAL

    def apply(self, command: Any, ctx: Any) -> Any:
        return self.OPS[command[0]](self, *command[1:])

    def query(self, query: Any) -> Any:
        return self.contents()

    def snapshot(self) -> bytes:
        return MSGPACK.encode(self.dump())

    def restore(self, data: bytes) -> None:
        self.load(MSGPACK.decode(data))

    def reset(self) -> None:
        raise NotImplementedError

    def dump(self) -> Any:
        raise NotImplementedError

    def load(self, state: Any) -> None:
        raise NotImplementedError

    def contents(self) -> Any:
        raise NotImplementedError


class DequeMachine(CollectionMachine):
    """A machine whose state is one deque of ``items``; snapshots as one list."""

    def reset(self) -> None:
        self.items: deque[Any] = deque()

    def dump(self) -> list[Any]:
        return list(self.items)

    def load(self, state: list[Any]) -> None:
        self.items = deque(state)

    def contents(self) -> list[Any]:
        return list(self.items)


M = TypeVar("M", bound=CollectionMachine)


def default_key(net: Network, kind_name: str) -> GroupKey:
    """The admission key used when a collection is opened without ``key=``.

    It is computed from the network id and ``kind_name`` (the collection
    type and name), which every node of the network can compute as well: it
    shuts out nodes outside the network and nobody within it."""
    return GroupKey(net.network_id.derive(f"mosaik.collections/{kind_name}"))


class Collection:
    """A handle on one replicated collection; see `mosaik.collections`.

    Open one with ``writer(net, name)`` or ``reader(net, name)``. Local reads
    answer at once from this node's replica: they see every write committed
    and applied here. Every write returns the version (log index) it
    committed at, applied here by then. `barrier` makes the next local reads
    linearizable.
    """

    __slots__ = ("_group", "_machine", "_name", "_replica", "_writable")
    _machine_type: ClassVar[type[CollectionMachine]]

    def __init__(self, group: Group[Any], writable: bool, name: str) -> None:
        self._group = group
        self._replica: Replica = group._replica
        # A repeated join on one network yields the `Group` of the first
        # join; its machine is the one to read.
        self._machine: Any = group.machine
        self._writable = writable
        self._name = name

    @classmethod
    def writer(
        cls,
        net: Network,
        name: str,
        *,
        key: GroupKey | None = None,
        consensus: ConsensusConfig | None = None,
        storage: LogStore | None = None,
    ) -> Self:
        """Joins the collection ``name`` on ``net`` to read and write it.

        ``key`` admits members (by default a key computed from the network
        id, the collection type and the name); ``consensus`` and
        ``storage`` work as they do for any group. The call does not wait:
        the group assembles in the background.
        """
        return cls._open(net, name, key, consensus, storage, writable=True)

    @classmethod
    def reader(
        cls,
        net: Network,
        name: str,
        *,
        key: GroupKey | None = None,
        consensus: ConsensusConfig | None = None,
        storage: LogStore | None = None,
    ) -> Self:
        """Joins the collection ``name`` to read it only: this node never
        leads (observer preference) and its writes raise `ReadOnlyError`."""
        return cls._open(net, name, key, consensus, storage, writable=False)

    @classmethod
    def _open(
        cls,
        net: Network,
        name: str,
        key: GroupKey | None,
        consensus: ConsensusConfig | None,
        storage: LogStore | None,
        writable: bool,
    ) -> Self:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a collection name is a non-empty str, not {name!r}")
        if key is not None and not isinstance(key, GroupKey):
            raise TypeError(f"key must be a GroupKey, not {type(key).__name__}")
        consensus = ConsensusConfig() if consensus is None else consensus
        machine = cls._machine_type(name, not writable, consensus)
        builder = (
            net.groups()
            .with_key(default_key(net, f"{machine.kind}/{name}") if key is None else key)
            .with_state_machine(machine)
            .with_consensus_config(consensus)
        )
        if storage is not None:
            if not isinstance(storage, (InMemoryLogStore, DiskLogStore)):
                raise TypeError(f"storage must be a log store, not {type(storage).__name__}")
            builder = builder.with_log_storage(storage)
        group = builder.join()
        if group.machine.observer != (not writable):
            # Joined before on this network, in the other role: one node is
            # either a reader or a writer of a collection.
            role = "reader" if group.machine.observer else "writer"
            raise ConfigError(
                f"{cls.__name__} {name!r} is open on this network as a {role} already; "
                "a node is a reader or a writer of a collection, not both"
            )
        handle = cls(group, writable, name)
        handle._opened()
        return handle

    def _opened(self) -> None:
        """Called once a new handle is made (the lock starts its clock here)."""

    # -- identity and status ----------------------------------------------

    @property
    def name(self) -> str:
        """The collection's name, as given to `writer` or `reader`."""
        return self._name

    @property
    def group(self) -> Group[Any]:
        """The group behind this collection (status, metrics, `when`)."""
        return self._group

    @property
    def writable(self) -> bool:
        """False for a handle opened with `reader`."""
        return self._writable

    @property
    def version(self) -> int:
        """The log index this node's copy stands at."""
        return self._replica.applied

    def when(self) -> CursorWatcher[int]:
        """Waits on versions: ``await c.when().reaches(v)`` resolves once this
        node applied version ``v`` (so local reads see that write)."""
        return self._group.when().committed()

    async def barrier(self) -> int:
        """Makes the next local reads linearizable: returns once this node
        applied every write committed anywhere before the call (a read
        index confirmed by the leader); the version it waited for.
        `mosaik.QueryOffline` when no leader confirmed one in time."""
        return await self._group.barrier()

    async def leave(self) -> None:
        """Leaves the collection's group (every handle on it on this network)."""
        await self._group.leave()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.leave()

    def __repr__(self) -> str:
        role = "writer" if self._writable else "reader"
        return f"{type(self).__name__}.{role}({self._name!r}, version={self.version})"

    # -- helpers for subclasses -------------------------------------------

    def _locked(self, read: Callable[[Any], T]) -> T:
        """``read(machine)`` under the replica's lock: never half a batch."""
        with self._replica.lock:
            return read(self._machine)

    def _check_writable(self) -> None:
        if not self._writable:
            raise ReadOnlyError(
                f"{type(self).__name__} {self._name!r} was opened with reader(): it cannot write"
            )

    def _execute(self, command: Any, request_id: bytes | None) -> Coroutine[Any, Any, int]:
        """`Group.execute` of ``command``: its coroutine, handed on as it is
        (no coroutine of its own: this is every plain write's path)."""
        self._check_writable()
        return self._group.execute(command, request_id=request_id)

    async def _call(self, command: list[Any], request_id: bytes | None) -> Any:
        """`Group.call` with a request id (a fresh one if none was given), so
        a retry after `mosaik.CommandUnknown` with ``err.request_id`` returns
        the first outcome instead of applying the command again; so does
        the retry made here after `mosaik.ResultNotKept`."""
        self._check_writable()
        rid = os.urandom(16) if request_id is None else request_id
        try:
            return await self._group.call(command, request_id=rid)
        except ResultNotKept:
            # This node got its own command inside a snapshot: the repeat
            # applies nothing and answers with the first outcome.
            return await self._group.call(command, request_id=rid)

    async def _until(self, ready: Callable[[Any], bool], within: float | None) -> bool:
        """Waits until ``ready(machine)`` holds here (checked under the lock
        after each applied index) or ``within`` seconds pass; whether it holds."""
        deadline = None if within is None else time.monotonic() + within
        watcher = self._group.when().committed()
        while True:
            with self._replica.lock:
                if ready(self._machine):
                    return True
                at = self._replica.applied
            wait = watcher.reaches(at + 1)
            if deadline is None:
                await wait
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_waited(wait), left)


async def _waited(waiting: Awaitable[T]) -> T:
    return await waiting
