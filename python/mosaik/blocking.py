"""mosaik for threads: the asyncio API without ``await``.

For code that runs on threads rather than on an event loop (Flask, Django,
scripts, a REPL). Every class here wraps its asyncio twin and has the same
methods; what the twin awaits, the method here waits for, and each such
method takes a keyword ``timeout`` (float seconds or a `timedelta`, none
by default) after which it cancels the operation and raises the builtin
`TimeoutError`. Exceptions from mosaik come through unchanged (the same
classes as with ``await``). Members that do not wait (``group.leader()``,
``group.committed()``, ``net.local``, ...) pass straight through.

Example:
    ```python
    net = mosaik.blocking.Network.new("app", timeout=10)
    group = net.groups().with_key(key).with_state_machine(Counter()).join()
    group.when().leader_elected(timeout=5)
    index = group.execute({"add": 1}, timeout=5)
    ```

The asyncio side runs on one event loop in one daemon thread, named
``mosaik-blocking``, shared by every object of this module. It starts with
the first call that needs it and lives as long as the process: at
interpreter exit the networks still open are closed (which tells their
peers) and the loop stops. A waiting call made from that thread itself
(from a callback scheduled on its loop, say) would wait for itself forever,
so it raises `RuntimeError` instead.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Future
from concurrent.futures import wait as wait_futures
from datetime import timedelta
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

from ._durations import Duration
from ._native import ConsensusConfig, Digest, EndpointAddr, Limits, PeerId
from .cursor import Cursor
from .group import (
    Bonds,
    CommittedQueryResult,
    Consistency,
    GroupConfig,
)
from .group import Group as AsyncGroup
from .group import GroupBuilder as AsyncGroupBuilder
from .group import Groups as AsyncGroups
from .groups import Config as GroupsConfig
from .keys import GroupKey
from .network import LocalNode
from .network import Network as AsyncNetwork
from .network import NetworkBuilder as AsyncNetworkBuilder
from .state_machine import NoOp
from .storage import LogStore
from .when import CursorWatcher as AsyncCursorWatcher
from .when import When as AsyncWhen

M = TypeVar("M")
N = TypeVar("N")
T = TypeVar("T")
V = TypeVar("V", int, Cursor)

EXIT_TIMEOUT = 5.0
"""Seconds the exit hook gives the open networks to close, and then the
loop's thread to finish."""


def _seconds(timeout: Duration | None) -> float | None:
    """``timeout`` in seconds, checked: None, or a non-negative number or
    `timedelta`."""
    if timeout is None:
        return None
    if isinstance(timeout, timedelta):
        seconds = timeout.total_seconds()
    elif isinstance(timeout, int | float) and not isinstance(timeout, bool):
        seconds = float(timeout)
    else:
        raise TypeError(f"timeout is float seconds or a timedelta, not {type(timeout).__name__}")
    if not seconds >= 0:
        raise ValueError(f"timeout must not be negative, not {timeout!r}")
    return seconds


async def _awaiting(make: Callable[[], Awaitable[T]]) -> T:
    """Awaits what ``make`` returns, calling it on the loop: an awaitable of
    `When` starts waiting when it is made, which needs the running loop."""
    return await make()


async def _close_all(networks: list[AsyncNetwork]) -> None:
    """Closes ``networks`` together; one that fails does not stop the others."""
    await asyncio.gather(*(n.close() for n in networks), return_exceptions=True)


class _Runner:
    """The facade's event loop and the daemon thread that runs it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False
        self.networks: weakref.WeakSet[Network] = weakref.WeakSet()

    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, started at the first call."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("mosaik.blocking has stopped: the interpreter is exiting")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=self._serve, args=(loop,), name="mosaik-blocking", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
                # Registered after mosaik's own exit hook, so it runs first.
                atexit.register(self._stop)
            return self._loop

    def run(self, make: Callable[[], Awaitable[T]], timeout: Duration | None) -> T:
        """What the awaitable made by ``make`` gives, awaited on the loop;
        `TimeoutError` (the operation cancelled) after ``timeout``."""
        seconds = _seconds(timeout)
        if threading.current_thread() is self._thread:
            raise RuntimeError(
                "a mosaik.blocking call on the facade's own event loop thread would wait "
                "for itself forever; use the asyncio API (await) there"
            )
        future: Future[T] = asyncio.run_coroutine_threadsafe(_awaiting(make), self.loop())
        try:
            done, _ = wait_futures([future], seconds)
        except BaseException:
            # KeyboardInterrupt, say: the operation must not go on unowned.
            future.cancel()
            raise
        # A future that finished at the deadline cannot be cancelled: its
        # outcome stands.
        if not done and future.cancel():
            raise TimeoutError(f"not done within {seconds:g} s; the operation was cancelled")
        return future.result()

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        finally:
            loop.close()

    def _stop(self) -> None:
        """At interpreter exit: closes the networks still open, then stops
        the loop and waits for its thread (each for at most `EXIT_TIMEOUT`)."""
        with self._lock:
            self._stopped = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        still_open = [n._aio for n in list(self.networks) if not n.closed]
        if still_open:
            closing = asyncio.run_coroutine_threadsafe(_close_all(still_open), loop)
            wait_futures([closing], EXIT_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(EXIT_TIMEOUT)


_runner = _Runner()


class Network:
    """A node on a mosaik network, for threads. Start one with `Network.new`
    or `Network.builder`; close it with `close` or a ``with`` block."""

    __slots__ = ("__weakref__", "_aio", "_groups")

    def __init__(self, network: AsyncNetwork) -> None:
        """Wraps a started asyncio `mosaik.Network` (use `new` or `builder`)."""
        self._aio = network
        self._groups = Groups(network.groups())
        _runner.networks.add(self)

    @staticmethod
    def new(name: str, *, timeout: Duration | None = None) -> Network:
        """A node with a random identity on 127.0.0.1, port chosen by the OS."""
        return NetworkBuilder(name).build(timeout=timeout)

    @staticmethod
    def builder(name: str) -> NetworkBuilder:
        """A builder of a node on the network ``name``."""
        return NetworkBuilder(name)

    @property
    def local(self) -> LocalNode:
        """This node as others see it: its `PeerId` and `EndpointAddr`."""
        return self._aio.local

    @property
    def network_id(self) -> Digest:
        """The `NetworkId`: the digest of the network's name."""
        return self._aio.network_id

    @property
    def groups_config(self) -> GroupsConfig:
        """The settings of this network's groups subsystem."""
        return self._aio.groups_config

    def groups(self) -> Groups:
        """The groups API of this network: the same `Groups` at every call."""
        return self._groups

    def known_peers(self) -> list[EndpointAddr]:
        """The peers in this node's discovery catalog."""
        return self._aio.known_peers()

    def sync_with(self, addr: EndpointAddr | str, *, timeout: Duration | None = None) -> None:
        """Exchanges peer catalogs with ``addr`` now."""
        _runner.run(lambda: self._aio.sync_with(addr), timeout)

    def metrics(self) -> dict[str, float]:
        """This node's metrics now, by name (as `mosaik.Network.metrics`)."""
        return self._aio.metrics()

    def close(self, *, timeout: Duration | None = None) -> None:
        """Stops all tasks, tells peers and releases the port. Idempotent."""
        _runner.run(self._aio.close, timeout)

    @property
    def closed(self) -> bool:
        """True once the network was closed."""
        return self._aio.closed

    def __enter__(self) -> Network:
        """The network itself; the ``with`` block closes it on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"blocking.{self._aio!r}"


class NetworkBuilder:
    """Configures a `Network` before it starts; every ``with_*`` returns the
    builder (as `mosaik.NetworkBuilder`, which it wraps)."""

    __slots__ = ("_aio",)

    def __init__(self, name: str) -> None:
        """A builder of a node on the network ``name``."""
        self._aio = AsyncNetworkBuilder(name)

    def with_secret_key(self, secret: bytes | str) -> NetworkBuilder:
        """The node's ed25519 seed: 32 bytes or 64 hex characters."""
        self._aio.with_secret_key(secret)
        return self

    def with_addresses(self, addrs: Iterable[str]) -> NetworkBuilder:
        """The first address is bound; all are advertised. Default 127.0.0.1:0."""
        self._aio.with_addresses(addrs)
        return self

    def with_bootstrap(self, peers: Iterable[EndpointAddr | str]) -> NetworkBuilder:
        """Peers to exchange catalogs with at start (retried until reached)."""
        self._aio.with_bootstrap(peers)
        return self

    def with_groups(self, config: GroupsConfig) -> NetworkBuilder:
        """The settings of the groups subsystem (`mosaik.groups.Config`)."""
        self._aio.with_groups(config)
        return self

    def with_gossip_interval(self, interval: Duration) -> NetworkBuilder:
        """How often the node refreshes its entry and syncs with random peers."""
        self._aio.with_gossip_interval(interval)
        return self

    def with_entry_ttl(self, ttl: Duration) -> NetworkBuilder:
        """How long an entry lives without a refresh before it is purged."""
        self._aio.with_entry_ttl(ttl)
        return self

    def with_limits(self, limits: Limits) -> NetworkBuilder:
        """The caps that bound what peers can make this node do (`mosaik.Limits`)."""
        self._aio.with_limits(limits)
        return self

    def build(self, *, timeout: Duration | None = None) -> Network:
        """Starts the node."""
        return Network(_runner.run(self._aio.build, timeout))


class Groups:
    """The groups of one `Network` (`Network.groups()`): joins groups, and
    joining a group id again returns the `Group` already joined while it is
    active."""

    __slots__ = ("_aio", "_joined", "_lock")

    def __init__(self, groups: AsyncGroups) -> None:
        """Wraps the asyncio `mosaik.Groups` of a network."""
        self._aio = groups
        self._lock = threading.Lock()
        self._joined: dict[Digest, Group[Any]] = {}

    @property
    def config(self) -> GroupsConfig:
        """The settings of this network's groups subsystem."""
        return self._aio.config

    def with_key(self, key: GroupKey) -> GroupBuilder[NoOp]:
        """A builder of the group admitted by ``key`` (a `NoOp` machine until
        `with_state_machine`)."""
        return GroupBuilder(self, self._aio.with_key(key))

    def _join(self, builder: AsyncGroupBuilder[M]) -> Group[M]:
        """What `GroupBuilder.join` does, one thread at a time: the same
        `Group` for the same asyncio group."""
        with self._lock:
            joined = builder.join()
            known = self._joined.get(joined.id)
            if known is None or known._aio is not joined:
                known = self._joined[joined.id] = Group(joined)
            return cast(Group[M], known)


class GroupBuilder(Generic[M]):
    """Configures a group before joining; ``with_*`` calls come in any order
    and each returns a builder."""

    __slots__ = ("_aio", "_groups")

    def __init__(self, groups: Groups, builder: AsyncGroupBuilder[M]) -> None:
        """Wraps an asyncio `mosaik.GroupBuilder` of ``groups``."""
        self._groups = groups
        self._aio = builder

    def with_key(self, key: GroupKey) -> GroupBuilder[M]:
        """The group's admission key."""
        return GroupBuilder(self._groups, self._aio.with_key(key))

    def with_state_machine(self, machine: N) -> GroupBuilder[N]:
        """The local state machine instance."""
        return GroupBuilder(self._groups, self._aio.with_state_machine(machine))

    def with_consensus_config(self, config: ConsensusConfig) -> GroupBuilder[M]:
        """Raft timings and quorum, shared by every member."""
        return GroupBuilder(self._groups, self._aio.with_consensus_config(config))

    def with_log_storage(self, storage: LogStore) -> GroupBuilder[M]:
        """`InMemoryLogStore()` (the default) or `DiskLogStore(path)`."""
        return GroupBuilder(self._groups, self._aio.with_log_storage(storage))

    def group_id(self) -> Digest:
        """The id this builder's group will have."""
        return self._aio.group_id()

    def join(self) -> Group[M]:
        """Joins without waiting while the group assembles in the background.
        A group id already joined on this network, and still active, yields
        that existing `Group` object rather than a new one."""
        return self._groups._join(self._aio)


class Group(Generic[M]):
    """A joined group, for threads. Get one from `GroupBuilder.join()`; leave
    it with `leave` or a ``with`` block."""

    __slots__ = ("_aio",)

    def __init__(self, group: AsyncGroup[M]) -> None:
        """Wraps a joined asyncio `mosaik.Group`."""
        self._aio = group

    @property
    def id(self) -> Digest:
        """The `GroupId`."""
        return self._aio.id

    @property
    def machine(self) -> M:
        """The local state machine instance (replaced if it is ever rebuilt)."""
        return self._aio.machine

    # -- commands ---------------------------------------------------------

    def execute(
        self,
        command: Any,
        *,
        request_id: bytes | None = None,
        timeout: Duration | None = None,
    ) -> int:
        """Commits ``command`` on a quorum and applies it here; its index.
        After a `TimeoutError` the command may still commit."""
        return _runner.run(lambda: self._aio.execute(command, request_id=request_id), timeout)

    def execute_many(
        self,
        commands: Iterable[Any],
        *,
        request_id: bytes | None = None,
        timeout: Duration | None = None,
    ) -> range:
        """Commits a batch; the range of its indices, applied here on return."""
        batch = list(commands)
        return _runner.run(lambda: self._aio.execute_many(batch, request_id=request_id), timeout)

    def feed(
        self,
        command: Any,
        *,
        request_id: bytes | None = None,
        timeout: Duration | None = None,
    ) -> int:
        """Returns once the leader assigned ``command`` an index."""
        return _runner.run(lambda: self._aio.feed(command, request_id=request_id), timeout)

    def feed_many(
        self,
        commands: Iterable[Any],
        *,
        request_id: bytes | None = None,
        timeout: Duration | None = None,
    ) -> range:
        """Returns once the leader assigned the batch its range of indices."""
        batch = list(commands)
        return _runner.run(lambda: self._aio.feed_many(batch, request_id=request_id), timeout)

    def call(
        self,
        command: Any,
        *,
        request_id: bytes | None = None,
        timeout: Duration | None = None,
    ) -> Any:
        """Executes ``command``; what this node's ``apply`` returned for it."""
        return _runner.run(lambda: self._aio.call(command, request_id=request_id), timeout)

    def call_many(
        self,
        commands: Iterable[Any],
        *,
        request_id: bytes | None = None,
        timeout: Duration | None = None,
    ) -> list[Any]:
        """Executes a batch; what ``apply`` returned for each, in order."""
        batch = list(commands)
        return _runner.run(lambda: self._aio.call_many(batch, request_id=request_id), timeout)

    # -- machine versions -------------------------------------------------

    @property
    def machine_version(self) -> int:
        """The machine version the group runs, as applied on this node."""
        return self._aio.machine_version

    def member_versions(self) -> dict[PeerId, int | None]:
        """The newest machine version the code of each bonded peer applies."""
        return self._aio.member_versions()

    def upgrade(self, version: int | None = None, *, timeout: Duration | None = None) -> int:
        """Switches the group to machine ``version`` (default: this node's
        `StateMachine.version`) at one committed index; that index. See
        `mosaik.Group.upgrade`."""
        return _runner.run(lambda: self._aio.upgrade(version), timeout)

    # -- queries ----------------------------------------------------------

    def query(
        self,
        query: Any,
        consistency: Consistency = Consistency.WEAK,
        *,
        timeout: Duration | None = None,
    ) -> CommittedQueryResult[Any]:
        """Answers ``query`` from the local machine (a copy); with STRONG,
        only once a read index confirmed by the leader is applied here."""
        return _runner.run(lambda: self._aio.query(query, consistency), timeout)

    # -- status -----------------------------------------------------------

    def leader(self) -> PeerId | None:
        """The leader this node knows, if any."""
        return self._aio.leader()

    def is_leader(self) -> bool:
        """Whether this node leads the group."""
        return self._aio.is_leader()

    def committed(self) -> int:
        """The committed index (0 = nothing committed)."""
        return self._aio.committed()

    def log_position(self) -> Cursor:
        """The term and index of the last entry of the local log."""
        return self._aio.log_position()

    def when(self) -> When:
        """Waits on the group's status."""
        return When(self._aio.when())

    def bonds(self) -> Bonds:
        """This node's bonds in the group, as they are now."""
        return self._aio.bonds()

    def config(self) -> GroupConfig:
        """What defines the group on this node."""
        return self._aio.config()

    def metrics(self) -> dict[str, float]:
        """This group's metrics."""
        return self._aio.metrics()

    @property
    def active(self) -> bool:
        """False once the group was left or its network closed."""
        return self._aio.active

    def leave(self, *, timeout: Duration | None = None) -> None:
        """Tells every bonded peer of the departure and stops the group."""
        _runner.run(self._aio.leave, timeout)

    def __enter__(self) -> Group[M]:
        """The group itself; the ``with`` block leaves it on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.leave()

    def __repr__(self) -> str:
        return f"blocking.{self._aio!r}"


class When:
    """Waits on the status of one group on this node. Each wait starts when
    the method runs, so the baseline of ``leader_changed`` is the status at
    the call."""

    __slots__ = ("_aio",)

    def __init__(self, when: AsyncWhen) -> None:
        """Wraps an asyncio `mosaik.When`."""
        self._aio = when

    def leader_elected(self, *, timeout: Duration | None = None) -> PeerId:
        """The leader; at once if one is known."""
        return _runner.run(self._aio.leader_elected, timeout)

    def leader_changed(self, *, timeout: Duration | None = None) -> PeerId:
        """The next leader different from the one known at the call."""
        return _runner.run(self._aio.leader_changed, timeout)

    def leader_is(self, peer_id: PeerId, *, timeout: Duration | None = None) -> PeerId:
        """Returns once ``peer_id`` leads."""
        return _runner.run(lambda: self._aio.leader_is(peer_id), timeout)

    def is_leader(self, *, timeout: Duration | None = None) -> None:
        """Returns once this node leads."""
        _runner.run(self._aio.is_leader, timeout)

    def is_follower(self, *, timeout: Duration | None = None) -> None:
        """Returns once this node does not lead, whether a leader is known or not."""
        _runner.run(self._aio.is_follower, timeout)

    def online(self, *, timeout: Duration | None = None) -> None:
        """Returns once this node leads, or follows a known leader and is not
        catching up."""
        _runner.run(self._aio.online, timeout)

    def offline(self, *, timeout: Duration | None = None) -> None:
        """Returns once this node is not online."""
        _runner.run(self._aio.offline, timeout)

    def committed(self) -> CursorWatcher[int]:
        """The committed index; ``reaches`` waits until this node applied it."""
        return CursorWatcher(self._aio.committed())

    def log(self) -> CursorWatcher[Cursor]:
        """The position of the local log's last entry."""
        return CursorWatcher(self._aio.log())


class CursorWatcher(Generic[V]):
    """Waits on the committed index (ints) or the log position (Cursors)."""

    __slots__ = ("_aio",)

    def __init__(self, watcher: AsyncCursorWatcher[V]) -> None:
        """Wraps an asyncio `mosaik.CursorWatcher`."""
        self._aio: AsyncCursorWatcher[V] = watcher

    def reaches(self, target: int | range | Cursor, *, timeout: Duration | None = None) -> V:
        """Returns once ``target`` (an index, or a range's last) is reached;
        for the committed index, entries up to it are applied here by then."""
        return _runner.run(lambda: self._aio.reaches(target), timeout)

    def advanced(self, *, timeout: Duration | None = None) -> V:
        """The value once it moves forward from where it was at the call."""
        return _runner.run(self._aio.advanced, timeout)

    def changed(self, *, timeout: Duration | None = None) -> V:
        """The value once it differs from where it was at the call."""
        return _runner.run(self._aio.changed, timeout)

    def reverted(self, *, timeout: Duration | None = None) -> V:
        """The value once it moves back from where it was at the call."""
        return _runner.run(self._aio.reverted, timeout)


__all__ = [
    "EXIT_TIMEOUT",
    "CursorWatcher",
    "Group",
    "GroupBuilder",
    "Groups",
    "Network",
    "NetworkBuilder",
    "When",
]
