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
from ._native import (
    COMMAND_OVERHEAD,
    MAX_REQUEST_ID,
    ConsensusConfig,
    Digest,
    LogReplaySync,
    PeerId,
)
from ._proposals import Proposals, ProposalStats, Requests, propose_counted, unsettled
from ._reads import Reads
from ._replica import Replica
from ._versions import CONTROL_PREFIX, MAX_VERSION, switch_key
from .codec import encode_all
from .cursor import Cursor
from .exceptions import (
    CommandTooLarge,
    CommandUnknown,
    ConfigError,
    GroupTerminated,
    NoCommands,
    QueryOffline,
)
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


def request_id_of(request_id: object) -> bytes | None:
    """A request id as given (``bytes`` of at most `MAX_REQUEST_ID`), or
    ``None``; `TypeError` / `ValueError` otherwise."""
    if request_id is None:
        return None
    if not isinstance(request_id, bytes):
        raise TypeError(f"request_id must be bytes, not {type(request_id).__name__}")
    if len(request_id) > MAX_REQUEST_ID:
        raise ValueError(f"request_id is at most {MAX_REQUEST_ID} bytes, not {len(request_id)}")
    if request_id.startswith(CONTROL_PREFIX):
        raise ValueError(f"request ids starting with {CONTROL_PREFIX!r} are mosaik's own")
    return request_id


@dataclass(frozen=True)
class Bond:
    """A persistent, authenticated connection to a fellow member."""

    peer_id: PeerId
    """The member at the other end."""


class Bonds:
    """The bonds of one node in one group, as seen at one moment.

    Iterate it for `Bond`s, take its ``len``, or test a `PeerId` (or a
    `Bond`) with ``in``.

    Example:
        ```python
        bonds = group.bonds()
        print(len(bonds), "bonds;", "leader bonded:", group.leader() in bonds)
        ```
    """

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
        """The bonded peers' ids, as a new list."""
        return list(self._peers)

    def __repr__(self) -> str:
        return f"Bonds({[str(p) for p in self._peers]})"


@dataclass(frozen=True)
class GroupConfig:
    """What defines a group on this node (`Group.config()`)."""

    group_id: Digest
    """The `GroupId`."""
    consensus: ConsensusConfig
    """The consensus settings the group was joined with."""
    handshake_timeout: timedelta
    """How long a bond handshake may take (`mosaik.groups.Config`)."""
    state_sync: LogReplaySync
    """How this node catches up (the machine's ``state_sync()``)."""


class Consistency(enum.Enum):
    """How a query is answered."""

    WEAK = "weak"
    """From this node's state, at once."""
    STRONG = "strong"
    """Linearizable: after the leader confirmed, with a quorum, that it still leads."""


@dataclass(frozen=True)
class CommittedQueryResult(Generic[R]):
    """A query's answer and the log index the state stood at.

    Example:
        ```python
        answer = await group.query("ada", mosaik.Consistency.STRONG)
        print(answer.result, "as of index", answer.at_position)
        ```
    """

    result: R
    """What the machine's ``query`` returned, as a copy through its codec."""
    at_position: int
    """The index of the last entry applied to the state that answered."""

    def state_position(self) -> int:
        """The same as `at_position`."""
        return self.at_position


class Group(Generic[M]):
    """A joined group. Get one from `GroupBuilder.join()`.

    Generic in its state machine: ``Group[Counter]``'s `machine` is a
    ``Counter``. The command calls (`execute`, `feed`, `call` and their
    batch forms) work on any member: a follower forwards to the leader.
    Leave with `leave` or an ``async with`` block; every call after that
    raises `GroupTerminated`.

    Example:
        ```python
        async with net.groups().with_key(key).with_state_machine(Counter()).join() as group:
            await group.when().online()
            index = await group.execute(5)
            total = (await group.query(None)).result
        ```
    """

    __slots__ = (
        "_config",
        "_executes",
        "_feeds",
        "_max_command",
        "_native",
        "_reads",
        "_replica",
        "_stats",
    )

    def __init__(self, native: _native.NativeGroup, replica: Replica, config: GroupConfig) -> None:
        self._native = native
        self._replica = replica
        self._config = config
        self._max_command = config.consensus.max_command_bytes
        budget = config.consensus.max_batch_bytes
        self._stats = ProposalStats()
        self._executes = Proposals(native.propose, False, budget, self._stats)
        self._feeds = Proposals(native.propose, True, budget, None)
        self._reads = Reads(native.read)

    @property
    def id(self) -> Digest:
        """The `GroupId`."""
        return self._native.id

    @property
    def machine(self) -> M:
        """The local state machine instance (replaced if it is ever rebuilt)."""
        return cast(M, self._replica.machine)

    # -- commands ---------------------------------------------------------

    def _too_large(self, size: int) -> CommandTooLarge:
        limit = self._config.consensus.max_command_bytes
        return CommandTooLarge(
            f"a command of {size} bytes encoded is above max_command_bytes {limit}", size, limit
        )

    def _encode_checked(self, commands: list[Any], request_id: bytes | None) -> list[bytes]:
        """The encoded commands, refused with `CommandTooLarge` when one is
        above ``max_command_bytes`` or all of them above ``max_batch_bytes``."""
        if not commands:
            raise NoCommands("an empty batch of commands")
        data = encode_all(self._replica.codec, commands)
        sizes = list(map(len, data))
        largest = max(sizes)
        if largest > self._max_command:
            raise self._too_large(largest)
        budget = self._config.consensus.max_batch_bytes
        extra = COMMAND_OVERHEAD + (0 if request_id is None else len(request_id))
        total = sum(sizes) + extra * len(data)
        if len(data) > 1 and total > budget:
            raise CommandTooLarge(
                f"a batch of {total} bytes is above max_batch_bytes {budget}; "
                "propose it in smaller batches",
                total,
                budget,
            )
        return data

    def _submit(
        self, proposals: Proposals, command: Any, request_id: bytes | None
    ) -> asyncio.Future[int]:
        """The future of ``command``'s index, in ``proposals``' next batch (a
        plain function: a coroutine here would cost every call one more
        object for the garbage collector to track)."""
        data = self._replica.codec.encode(command)
        if len(data) > self._max_command:
            raise self._too_large(len(data))
        request = None if request_id is None else (request_id, 0)
        return proposals.submit(command, data, request)

    async def _propose(
        self, commands: list[Any], on_assign: bool, request_id: bytes | None
    ) -> range:
        data = self._encode_checked(commands, request_id)
        requests: Requests | None = None
        if request_id is not None:
            requests = [(request_id, i) for i in range(len(data))]
        stats = None if on_assign else self._stats
        outcome = await propose_counted(
            stats, self._native.propose(data, on_assign, requests), len(data)
        )
        first, done = outcome.first, outcome.done
        if request_id is not None and 0 < done < len(commands):
            # Each command's key is the id and its place in the batch: only
            # the whole batch, retried with the same id, keeps those places.
            raise CommandUnknown(
                f"a leader change cut the batch after {done} commands (committed from index "
                f"{first}); retry the whole batch with the same request id",
                commands,
                request_id,
            )
        if done < len(commands):
            raise unsettled(commands, first, done, outcome.unknown, request_id)
        return range(first, first + done)

    async def execute(self, command: Any, *, request_id: bytes | None = None) -> int:
        """Commits ``command`` on a quorum and applies it here; its index.
        With a ``request_id`` the group applied within its ``dedupe_window``,
        nothing is applied again and the first one's index comes back.
        Calls made in the same turn of the event loop go to the leader
        together, as one batch of consecutive indices.

        `CommandOffline` if it certainly did not commit, `CommandUnknown` if
        it may have; a cancelled call may still commit.

        Example:
            ```python
            index = await group.execute({"op": "set", "key": "k", "value": 1})
            assert group.committed() >= index     # and applied here
            ```
        """
        request_id = request_id_of(request_id)
        if request_id is None:
            return await self._submit(self._executes, command, None)
        ticket = self._replica.watch(self._native.committed())
        try:
            index = await self._submit(self._executes, command, request_id)
            return self._replica.first_of(index)
        finally:
            self._replica.unwatch(ticket)

    async def execute_many(
        self, commands: Iterable[Any], *, request_id: bytes | None = None
    ) -> range:
        """Commits a batch; the range of its indices, applied here on return.
        With a ``request_id``, each command of a retried batch is applied
        once; when all of them were, the first batch's range comes back."""
        commands = list(commands)
        request_id = request_id_of(request_id)
        if request_id is None:
            return await self._propose(commands, False, None)
        ticket = self._replica.watch(self._native.committed())
        try:
            indices = await self._propose(commands, False, request_id)
            firsts = [self._replica.first_of(i) for i in indices]
            again = range(firsts[0], firsts[0] + len(firsts))
            return again if firsts == list(again) else indices
        finally:
            self._replica.unwatch(ticket)

    async def feed(self, command: Any, *, request_id: bytes | None = None) -> int:
        """Returns once the leader assigned ``command`` an index. A repeated
        ``request_id`` is found only when the entry is applied: its index
        then applies nothing."""
        return await self._submit(self._feeds, command, request_id_of(request_id))

    async def feed_many(self, commands: Iterable[Any], *, request_id: bytes | None = None) -> range:
        """`feed` for a batch: the range of the indices the leader assigned."""
        return await self._propose(list(commands), True, request_id_of(request_id))

    async def call(self, command: Any, *, request_id: bytes | None = None) -> Any:
        """Commits ``command``, applies it here and returns what this node's
        ``apply`` returned for it (for a repeated ``request_id``, what it
        returned the first time). `ApplyError` if ``apply`` raised: the
        command stays committed and applied everywhere."""
        request_id = request_id_of(request_id)
        ticket = self._replica.watch(self._native.committed())
        try:
            index = await self._submit(self._executes, command, request_id)
            return self._replica.result_of(index)[1]
        finally:
            self._replica.unwatch(ticket)

    async def call_many(
        self, commands: Iterable[Any], *, request_id: bytes | None = None
    ) -> list[Any]:
        """`call` for a batch: one value per command, in order; `ApplyError`
        for the first command whose ``apply`` raised."""
        commands = list(commands)
        request_id = request_id_of(request_id)
        ticket = self._replica.watch(self._native.committed())
        try:
            indices = await self._propose(commands, False, request_id)
            return [self._replica.result_of(i)[1] for i in indices]
        finally:
            self._replica.unwatch(ticket)

    # -- machine versions -------------------------------------------------

    @property
    def machine_version(self) -> int:
        """The machine version the group runs, as applied on this node: 1
        until `upgrade` switches it."""
        return self._replica.version

    def member_versions(self) -> dict[PeerId, int | None]:
        """The newest machine version the code of each bonded peer applies,
        as that peer announces it (``None``: it announces none, as a mosaik
        release before versions does)."""
        return dict(self._native.member_versions())

    async def upgrade(self, version: int | None = None) -> int:
        """Switches the whole group to machine ``version`` (by default this
        node's `StateMachine.version`) at one committed log index, the same
        on every member; returns that index once it is applied here.

        Refused with `ConfigError`, changing nothing, unless this node and
        every bonded peer run code that applies ``version``. A group that
        already runs ``version`` or a newer one is left as it is; the index
        returned is then the switch's, or, where this node got the group's
        state from a snapshot, the index it stands at. Safe to retry after
        `CommandOffline` or `CommandUnknown`: a switch applies once.

        Example:
            ```python
            class Counter(mosaik.StateMachine):
                version = 2
                ...
            index = await group.upgrade()   # every member runs version 2 code
            assert group.machine_version == 2
            ```
        """
        replica = self._replica
        target = replica.supported if version is None else version
        if (
            isinstance(target, bool)
            or not isinstance(target, int)
            or not 1 <= target <= MAX_VERSION
        ):
            raise ConfigError(f"version must be an int from 1 to {MAX_VERSION}, not {target!r}")
        if target > replica.supported:
            raise ConfigError(
                f"this node's {type(replica.machine).__name__} applies machine versions up to "
                f"{replica.supported}, not {target}"
            )
        if replica.version >= target:
            return replica.version_since or replica.applied
        behind = {
            str(peer)[:12]: supported
            for peer, supported in self._native.member_versions()
            if supported is None or supported < target
        }
        if behind:
            listed = ", ".join(f"{peer} ({v or 'no version'})" for peer, v in behind.items())
            raise ConfigError(
                f"not every member applies machine version {target}: {listed}; "
                "deploy the new code on them first"
            )
        outcome = await _bridge.watch(self._native.propose([b""], False, [switch_key(target)]))
        if outcome.done < 1:
            raise unsettled([f"machine version {target}"], outcome.first, 0, outcome.unknown, None)
        # A switch committed meanwhile by another caller is the one in force.
        return replica.version_since or outcome.first

    # -- queries ----------------------------------------------------------

    async def barrier(self) -> int:
        """Makes the next weak queries (and a collection's local reads)
        linearizable: returns once this node applied every entry committed
        anywhere before the call, confirmed as in a strong query by a
        leader that heard a quorum; the index it waited for.
        `QueryOffline` (with ``query`` None) when no leader confirmed one
        in time. Barriers and strong queries made in one turn of the event
        loop share one read index."""
        index = await self._reads.index()
        if index is None:
            raise QueryOffline("no leader confirmed a read index in time", None)
        return index

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
        self._replica.codec.encode(query)  # refuses what the codec cannot carry
        if consistency is Consistency.STRONG:
            index = await self._reads.index()
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
        """The leader this node knows now, ``None`` during an election."""
        return self._native.leader()

    def is_leader(self) -> bool:
        """Whether this node leads the group now."""
        return self._native.is_leader()

    def committed(self) -> int:
        """The committed index (0 = nothing committed)."""
        return self._native.committed()

    def is_online(self) -> bool:
        """Whether this node is online right now: it leads, or it follows a
        leader it knows of while neither catching up nor in an election
        (see `When.online`)."""
        return self._native.online()

    def log_position(self) -> Cursor:
        """The term and index of the last entry of this node's log,
        committed or not."""
        return self._native.log_position()

    def when(self) -> When:
        """Awaitable conditions on this group's status (`When`)."""
        return When(self._native)

    def bonds(self) -> Bonds:
        """This node's bonds in the group, as they are now."""
        return Bonds(self._native.bonds())

    def config(self) -> GroupConfig:
        """What defines the group on this node: its id and settings."""
        return self._config

    def metrics(self) -> dict[str, float]:
        """This group's metrics now, by name (``mosaik.groups.raft.committed``,
        ``mosaik.groups.bonds.active``, ...); see the monitoring page."""
        return {**self._native.metrics(), **self._stats.samples()}

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
    """Sets up a group before it is joined; the ``with_*`` calls can be made
    in any order.

    Every call leaves the builder it is made on untouched and hands back a
    new one, whose type follows its state machine: after
    ``with_state_machine(Counter())`` the builder is a
    ``GroupBuilder[Counter]``, and its `join` yields a ``Group[Counter]``.

    Example:
        ```python
        builder = (
            net.groups()
            .with_key(key)
            .with_state_machine(Counter())
            .with_consensus_config(mosaik.ConsensusConfig(min_quorum=2))
        )
        print("joining", builder.group_id())
        group = builder.join()
        ```
    """

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
        """The group's admission key (`TypeError` for anything but a
        `GroupKey`)."""
        if not isinstance(key, GroupKey):
            raise TypeError(f"expected a GroupKey, not {type(key).__name__}")
        return GroupBuilder(self._groups, key, self._machine, self._consensus, self._storage)

    def with_state_machine(self, machine: N) -> GroupBuilder[N]:
        """The local state machine instance (default `NoOp`); checked at
        once: `TypeError` if it lacks ``signature``, ``apply`` or ``query``,
        or if ``signature()`` is not a str or bytes."""
        check_machine(machine)
        machine_signature(machine)
        return GroupBuilder(self._groups, self._key, machine, self._consensus, self._storage)

    def with_consensus_config(self, config: ConsensusConfig) -> GroupBuilder[M]:
        """Raft timings and quorum, which every member must share (default
        `ConsensusConfig()`)."""
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
        """Joins without waiting while the group assembles in the background.
        A group id already joined on this network, and still active, yields
        that existing `Group` object rather than a new one."""
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

    def joined(self) -> list[Group[Any]]:
        """The groups joined on this network that are still active."""
        return [group for group in self._joined.values() if group.active]

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
        replica = Replica(machine, str(group_id)[:12], consensus.dedupe_window)
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
            machine_signature=machine_signature(machine),
            machine_version=replica.supported,
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
