"""Joining groups: `Groups`, the `GroupBuilder`, and the `Group` handle."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

from . import _bridge, _native
from ._native import ConsensusConfig, Digest, LogReplaySync, PeerId
from ._proposals import Proposals, unsettled
from ._replica import Replica
from .cursor import Cursor
from .exceptions import GroupTerminated, NoCommands, QueryOffline
from .groups import Config as GroupsConfig
from .keys import GroupKey
from .state_machine import (
    LeadershipPreference,
    NoOp,
    check_machine,
    machine_signature,
    snapshot_interval,
)
from .storage import DiskLogStore, InMemoryLogStore, LogStore, disk_spec
from .when import When

M = TypeVar("M")
N = TypeVar("N")
R = TypeVar("R")


def derive_group_id(
    key: GroupKey, consensus: ConsensusConfig, machine_sig: Digest, sync_sig: Digest
) -> Digest:
    """``key.secret.hashed().derive(consensus.digest()).derive(machine).derive(sync)``."""
    return key.secret.hashed().derive(consensus.digest()).derive(machine_sig).derive(sync_sig)


def state_sync_of(machine: object) -> LogReplaySync:
    """``machine.state_sync()`` if it defines one, else the default `LogReplaySync`."""
    state_sync = getattr(machine, "state_sync", None)
    sync = state_sync() if callable(state_sync) else LogReplaySync()
    if not isinstance(sync, LogReplaySync):
        raise TypeError(f"state_sync() must return a LogReplaySync, not {type(sync).__name__}")
    return sync


def preference_of(machine: object) -> LeadershipPreference:
    """``machine.leadership_preference()`` if it defines one, else ``NORMAL``."""
    prefer = getattr(machine, "leadership_preference", None)
    pref = prefer() if callable(prefer) else LeadershipPreference.NORMAL
    if not isinstance(pref, LeadershipPreference):
        raise TypeError(f"leadership_preference() must return a LeadershipPreference, not {pref!r}")
    return pref


@dataclass(frozen=True)
class Bond:
    """A persistent, authenticated connection to a fellow member."""

    peer_id: PeerId


class Bonds:
    """The bonds of one node in one group, as seen at one moment."""

    __slots__ = ("_peers",)

    def __init__(self, peers: list[PeerId]) -> None:
        self._peers = peers

    def __iter__(self) -> Iterator[Bond]:
        return (Bond(p) for p in self._peers)

    def __len__(self) -> int:
        return len(self._peers)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, Bond):
            item = item.peer_id
        return item in self._peers

    def peer_ids(self) -> list[PeerId]:
        return list(self._peers)

    def __repr__(self) -> str:
        return f"Bonds({[str(p) for p in self._peers]})"


@dataclass(frozen=True)
class GroupConfig:
    """What defines a group on this node."""

    group_id: Digest
    consensus: ConsensusConfig
    handshake_timeout: timedelta
    state_sync: LogReplaySync


class Consistency(enum.Enum):
    """How a query is answered."""

    WEAK = "weak"
    """From this node's state, at once."""
    STRONG = "strong"
    """Linearizable: after the leader confirmed, with a quorum, that it still leads."""


@dataclass(frozen=True)
class CommittedQueryResult(Generic[R]):
    """A query's answer and the log index the state stood at."""

    result: R
    at_position: int

    def state_position(self) -> int:
        return self.at_position


class Group(Generic[M]):
    """A joined group. Get one from `GroupBuilder.join()`."""

    __slots__ = ("_config", "_executes", "_feeds", "_native", "_replica")

    def __init__(self, native: _native.NativeGroup, replica: Replica, config: GroupConfig) -> None:
        self._native = native
        self._replica = replica
        self._config = config
        self._executes = Proposals(native.propose, on_assign=False)
        self._feeds = Proposals(native.propose, on_assign=True)

    @property
    def id(self) -> Digest:
        return self._native.id

    @property
    def machine(self) -> M:
        """The local state machine instance (replaced if it is ever rebuilt)."""
        return cast(M, self._replica.machine)

    # -- commands ---------------------------------------------------------

    def _encode(self, commands: list[Any]) -> list[bytes]:
        encode = self._replica.codec.encode
        return [encode(c) for c in commands]

    async def _propose(self, commands: list[Any], on_assign: bool) -> range:
        if not commands:
            raise NoCommands("an empty batch of commands")
        pending = self._native.propose(self._encode(commands), on_assign)
        outcome = await _bridge.watch(pending)
        first, done = outcome.first, outcome.done
        if done < len(commands):
            raise unsettled(commands, first, done, outcome.unknown)
        return range(first, first + done)

    async def execute(self, command: Any) -> int:
        """Commits ``command`` on a quorum and applies it here; its index.
        Concurrent calls are proposed together (see `_proposals`)."""
        return await self._executes.submit(command, self._replica.codec.encode(command))

    async def execute_many(self, commands: Iterable[Any]) -> range:
        """Commits a batch; the range of its indices, applied here on return."""
        return await self._propose(list(commands), on_assign=False)

    async def feed(self, command: Any) -> int:
        """Returns once the leader assigned ``command`` an index."""
        return await self._feeds.submit(command, self._replica.codec.encode(command))

    async def feed_many(self, commands: Iterable[Any]) -> range:
        return await self._propose(list(commands), on_assign=True)

    # -- queries ----------------------------------------------------------

    async def query(
        self, query: Any, consistency: Consistency = Consistency.WEAK
    ) -> CommittedQueryResult[Any]:
        """Answers ``query`` from the local machine, as a copy of the
        machine's answer made through its codec; with STRONG, only once a
        read index confirmed by the leader is applied here. ``consistency``
        must be a `Consistency` (`TypeError` otherwise: a string such as
        ``"strong"`` would otherwise read as weak)."""
        if not isinstance(consistency, Consistency):
            raise TypeError(
                f"consistency must be a mosaik.Consistency, not {type(consistency).__name__}"
            )
        self._encode([query])
        if consistency is Consistency.STRONG:
            index = await _bridge.watch(self._native.read())
            if index is None:
                raise QueryOffline("no leader confirmed a read index in time", query)
        elif not self._native.active:
            raise GroupTerminated("the group was left or its network closed")
        answer = self._replica.query_if_free(query)
        if answer is None:
            # A long apply holds the machine: wait for it on a thread, not
            # on the event loop.
            answer = await asyncio.to_thread(self._replica.query, query)
        result, position = answer
        return CommittedQueryResult(result, position)

    # -- status -----------------------------------------------------------

    def leader(self) -> PeerId | None:
        return self._native.leader()

    def is_leader(self) -> bool:
        return self._native.is_leader()

    def committed(self) -> int:
        """The committed index (0 = nothing committed)."""
        return self._native.committed()

    def log_position(self) -> Cursor:
        return self._native.log_position()

    def when(self) -> When:
        return When(self._native)

    def bonds(self) -> Bonds:
        return Bonds(self._native.bonds())

    def config(self) -> GroupConfig:
        return self._config

    def metrics(self) -> dict[str, float]:
        return self._native.metrics()

    @property
    def active(self) -> bool:
        """False once the group was left or its network closed."""
        return self._native.active

    async def leave(self) -> None:
        """Tells every bonded peer of the departure and stops the group."""
        await _bridge.watch(self._native.leave())

    async def __aenter__(self) -> Group[M]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.leave()

    def __repr__(self) -> str:
        return f"Group(id={self.id}, bonds={len(self.bonds())})"


class GroupBuilder(Generic[M]):
    """Configures a group before joining; ``with_*`` calls come in any order."""

    def __init__(
        self,
        groups: Groups,
        key: GroupKey,
        machine: M,
        consensus: ConsensusConfig | None = None,
        storage: LogStore | None = None,
    ) -> None:
        self._groups = groups
        self._key = key
        self._machine = machine
        self._consensus = consensus or ConsensusConfig()
        self._storage = storage or InMemoryLogStore()

    def with_key(self, key: GroupKey) -> GroupBuilder[M]:
        if not isinstance(key, GroupKey):
            raise TypeError(f"expected a GroupKey, not {type(key).__name__}")
        return GroupBuilder(self._groups, key, self._machine, self._consensus, self._storage)

    def with_state_machine(self, machine: N) -> GroupBuilder[N]:
        check_machine(machine)
        machine_signature(machine)
        return GroupBuilder(self._groups, self._key, machine, self._consensus, self._storage)

    def with_consensus_config(self, config: ConsensusConfig) -> GroupBuilder[M]:
        if not isinstance(config, ConsensusConfig):
            raise TypeError(f"expected a ConsensusConfig, not {type(config).__name__}")
        return GroupBuilder(self._groups, self._key, self._machine, config, self._storage)

    def with_log_storage(self, storage: LogStore) -> GroupBuilder[M]:
        """Where the term, the vote, the log and snapshots live:
        `InMemoryLogStore()` (the default) or `DiskLogStore(path)`."""
        if not isinstance(storage, (InMemoryLogStore, DiskLogStore)):
            raise TypeError(f"expected a log store, not {type(storage).__name__}")
        return GroupBuilder(self._groups, self._key, self._machine, self._consensus, storage)

    def group_id(self) -> Digest:
        """The id this builder's group will have."""
        sync = state_sync_of(self._machine)
        return derive_group_id(
            self._key, self._consensus, machine_signature(self._machine), sync.signature()
        )

    def join(self) -> Group[M]:
        """Joins now; the group forms in the background. Joining the same
        group id twice on one network returns the same `Group`."""
        return self._groups._join(self._key, self._machine, self._consensus, self._storage)


class Groups:
    """The groups of one `Network`: made once with it (`Network.groups()`
    returns it), it joins groups and remembers those joined, so that joining
    a group id again returns the `Group` already joined while it is active."""

    __slots__ = ("_config", "_joined", "_native")

    def __init__(self, native: _native.NativeNetwork, config: GroupsConfig) -> None:
        self._native = native
        self._config = config
        self._joined: dict[Digest, Group[Any]] = {}

    @property
    def config(self) -> GroupsConfig:
        """The settings of this network's groups subsystem."""
        return self._config

    def with_key(self, key: GroupKey) -> GroupBuilder[NoOp]:
        """A builder of the group admitted by ``key`` (a `NoOp` machine until
        `with_state_machine`)."""
        if not isinstance(key, GroupKey):
            raise TypeError(f"expected a GroupKey, not {type(key).__name__}")
        return GroupBuilder(self, key, NoOp())

    def _join(
        self, key: GroupKey, machine: M, consensus: ConsensusConfig, storage: LogStore
    ) -> Group[M]:
        """What `GroupBuilder.join` does: the active group of this id if one
        is joined, else a new one (which replaces a group left or closed)."""
        state_sync = state_sync_of(machine)
        preference = preference_of(machine)
        group_id = derive_group_id(
            key, consensus, machine_signature(machine), state_sync.signature()
        )
        existing = self._joined.get(group_id)
        if existing is not None and existing.active:
            return cast(Group[M], existing)
        config = GroupConfig(group_id, consensus, self._config.handshake_timeout, state_sync)
        replica = Replica(machine, str(group_id)[:12])
        join = _native.GroupJoin(
            group_id=group_id,
            secret=key.secret,
            consensus=consensus,
            handshake_timeout=config.handshake_timeout,
            replica=replica,
            preference=preference,
            state_sync=state_sync,
            disk=disk_spec(storage),
            snapshot_every=snapshot_interval(machine),
        )
        native = self._native.join_group(join)
        group: Group[M] = Group(native, replica, config)
        self._joined[group_id] = group
        return group


__all__ = [
    "Bond",
    "Bonds",
    "CommittedQueryResult",
    "Consistency",
    "Group",
    "GroupBuilder",
    "GroupConfig",
    "Groups",
    "derive_group_id",
]
