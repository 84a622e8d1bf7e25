"""Type stubs of the native module mosaik._native.

The Rust extension. Its public types are re-exported by `mosaik` and
documented there: `Digest`, `PeerId`, `EndpointAddr`, `Limits`,
`ConsensusConfig`, `LogReplaySync`, `LeadershipPreference`, `Cursor` and
`ApplyContext`. Everything else here is plumbing of the package's own
modules (`Network` and `Group` are built on `NativeNetwork` and
`NativeGroup`), not meant to be used directly.
"""

from collections.abc import Iterable
from datetime import timedelta
from typing import Any, ClassVar, Generic, Literal, TypeVar, final

from mosaik._replica import Replica
from mosaik.consensus import ConsensusConfigBuilder

_T_co = TypeVar("_T_co", covariant=True)

__all__ = [
    "COMMAND_OVERHEAD",
    "DISCOVERY_ALPN",
    "GROUPS_ALPN",
    "MAX_REQUEST_ID",
    "MSGPACK_MAX_DEPTH",
    "ApplyContext",
    "Bridge",
    "Change",
    "ConsensusConfig",
    "Cursor",
    "Digest",
    "EndpointAddr",
    "GroupJoin",
    "LeadershipPreference",
    "Limits",
    "LogReplaySync",
    "NativeGroup",
    "NativeNetwork",
    "NetworkOptions",
    "PeerId",
    "Pending",
    "Proposal",
    "Until",
    "check_msgpack_depth",
    "group_secret",
    "in_flight",
    "live_tasks",
    "set_log_level",
    "start_network",
    "stop_appliers",
]

GROUPS_ALPN: bytes
"""The ALPN id of bond connections, ``b"/mosaik/groups/1"`` (`mosaik.groups.ALPN`)."""
MSGPACK_MAX_DEPTH: int
"""How many lists, tuples and dicts deep a value of the default codec may
nest: 32 (`mosaik.codec.MAX_DEPTH`).
"""
COMMAND_OVERHEAD: int
"""Bytes each command counts for against `ConsensusConfig.max_batch_bytes`,
besides its encoding and its request id.
"""
MAX_REQUEST_ID: int
"""The longest request id a command call takes, in bytes (64)."""
DISCOVERY_ALPN: bytes
"""The ALPN id of discovery connections (catalog exchanges)."""

@final
class Limits:
    """Caps that bound what peers can make a network do; keyword overrides
    of the defaults. `ConfigError` for an unknown name or a value below 1.

    What each cap defends against is on the documentation's security page.

    Example:
        ```python
        limits = mosaik.Limits(max_peers=20_000, max_pending_connections_per_ip=64)
        net = await mosaik.Network.builder("my-app").with_limits(limits).build()
        ```
    """

    def __new__(
        cls,
        *,
        max_pending_connections: int = ...,
        max_pending_connections_per_ip: int = ...,
        retry_above_handshakes: int = ...,
        refusals_per_ip_per_minute: int = ...,
        max_concurrent_dials: int = ...,
        new_address_dials_per_second: int = ...,
        max_dial_backoff: float | timedelta = ...,
        max_peers: int = ...,
        max_new_peers_per_exchange: int = ...,
    ) -> Limits: ...
    @property
    def max_pending_connections(self) -> int:
        """Incoming connections not yet bonded, all addresses together (default 256)."""
    @property
    def max_pending_connections_per_ip(self) -> int:
        """Incoming connections not yet bonded from one IP address; an IPv6 /64
        counts as one address (default 32).
        """
    @property
    def retry_above_handshakes(self) -> int:
        """QUIC handshakes in progress above which a new one must first prove its
        address with a Retry (default 64).
        """
    @property
    def refusals_per_ip_per_minute(self) -> int:
        """Probing refusals (another network, a group not joined here, a wrong
        proof) answered per address and minute; past it, the address gets no
        answer until the budget refills (default 30).
        """
    @property
    def max_concurrent_dials(self) -> int:
        """Outgoing dials in flight at once (default 16)."""
    @property
    def new_address_dials_per_second(self) -> int:
        """Dials per second to (peer, address) pairs never reached before, in
        bursts of up to four times as many (default 4).
        """
    @property
    def max_dial_backoff(self) -> timedelta:
        """The longest pause after failed dials of a pair never reached (default
        30 s; a peer reached before backs off at most 2 s).
        """
    @property
    def max_peers(self) -> int:
        """Peers the discovery catalog holds (default 4,096)."""
    @property
    def max_new_peers_per_exchange(self) -> int:
        """New peers one discovery exchange may add (default 256)."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Pending(Generic[_T_co]):
    """A native operation in flight; `mosaik._bridge.watch` makes it an
    asyncio future (the only way to await it).
    """
    def cancel(self) -> None:
        """Aborts the operation: its Rust future is dropped."""

@final
class Bridge:
    """Where one event loop learns of finished native operations (`mosaik._bridge`)."""

    def __init__(self) -> None: ...
    def fileno(self) -> int:
        """The descriptor the loop watches: readable when operations finished."""
    def watch(self, pending: Pending[Any]) -> int | None:
        """Attaches ``pending``; the id its outcome will carry, or ``None`` if it
        was watched before.
        """
    def drain(self) -> list[tuple[int, bool, Any]]:
        """The operations finished since the last drain, as ``(id, ok, value)``
        (``value`` is the exception when ``ok`` is false).
        """

@final
class Cursor:
    """A position in a group's log: a ``term`` and an ``index``.

    Cursors compare by term, then index, and are hashable; ``(term, index)``
    names one entry on every node that holds it.

    Example:
        ```python
        position = group.log_position()
        assert mosaik.Cursor(1, 9) < mosaik.Cursor(2, 1)
        ```
    """

    def __new__(cls, term: int, index: int) -> Cursor: ...
    @property
    def term(self) -> int:
        """The term of the entry: a ballot whose high 32 bits are the election
        round (see the consensus rules).
        """
    @property
    def index(self) -> int:
        """The entry's log index, from 1 (0: before the first entry)."""
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    def __lt__(self, other: Cursor, /) -> bool: ...
    def __le__(self, other: Cursor, /) -> bool: ...
    def __gt__(self, other: Cursor, /) -> bool: ...
    def __ge__(self, other: Cursor, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class ApplyContext:
    """What ``apply`` and ``apply_batch`` are told besides the commands.

    Nothing in it differs between nodes for the same index, so a machine may
    use it and stay deterministic. For ``apply`` both cursors are the
    position of the command applied; for ``apply_batch`` they are the
    position of the batch's last command.

    Example:
        ```python
        def apply(self, command, ctx):
            self.history.append((ctx.log_position.index, command))
        ```
    """

    def __new__(
        cls, committed: Cursor, log_position: Cursor, current_term: int
    ) -> ApplyContext: ...
    @property
    def committed(self) -> Cursor:
        """The committed position the command is applied at."""
    @property
    def log_position(self) -> Cursor:
        """The position of the command in the log (its index is the one
        ``execute`` returned for it).
        """
    @property
    def current_term(self) -> int:
        """The term of the entry being applied."""
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Digest:
    """A 32-byte blake3 value: the type of every id (`UniqueId`, `NetworkId`,
    `GroupId`).

    ``bytes(d)`` is its 32 bytes, ``str(d)`` and ``d.hex()`` its 64 hex
    characters; digests compare, order and hash by value.

    Example:
        ```python
        network = mosaik.Digest.from_str("my-app")          # hashes the name
        again = mosaik.Digest.from_str(network.hex())       # hex is read back as is
        assert network == again
        child = network.derive("orders")                    # blake3(network || "orders")
        ```
    """

    @staticmethod
    def from_str(text: str) -> Digest:
        """64 hex characters are decoded as they are; any other string is
        hashed (blake3 of its UTF-8).
        """
    @staticmethod
    def from_bytes(data: bytes) -> Digest:
        """32 bytes are taken as they are; bytes of any other length are hashed."""
    def derive(self, info: bytes | str | Digest) -> Digest:
        """blake3 of this digest's 32 bytes followed by ``info`` (bytes, a str
        as UTF-8, or another digest's 32 bytes).
        """
    def hashed(self) -> Digest:
        """blake3 of this digest's 32 bytes."""
    def hex(self) -> str:
        """The 64 lowercase hex characters of the digest (as ``str(d)``)."""
    def __bytes__(self) -> bytes: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    def __lt__(self, other: Digest, /) -> bool: ...
    def __le__(self, other: Digest, /) -> bool: ...
    def __gt__(self, other: Digest, /) -> bool: ...
    def __ge__(self, other: Digest, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class PeerId:
    """A node's identity: its ed25519 public key (`Network.local.id`).

    ``bytes(p)`` is the 32 bytes of the key and ``str(p)`` their hex; peer
    ids compare, order and hash by value. A peer whose TLS key differs from
    the id it claims is refused.
    """

    @staticmethod
    def from_hex(text: str) -> PeerId:
        """Reads 64 hex characters (as ``str(p)`` writes them); `ConfigError`
        otherwise.
        """
    @staticmethod
    def from_bytes(data: bytes) -> PeerId:
        """Reads the 32 bytes of an ed25519 public key; `ConfigError` otherwise."""
    def __bytes__(self) -> bytes: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    def __lt__(self, other: PeerId, /) -> bool: ...
    def __le__(self, other: PeerId, /) -> bool: ...
    def __gt__(self, other: PeerId, /) -> bool: ...
    def __ge__(self, other: PeerId, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class EndpointAddr:
    """Where to reach a node: its `PeerId` and the socket addresses it
    advertises.

    ``str(addr)`` is ``"<peer id hex>@ip:port[,ip:port...]"``; `parse` reads
    it back. Every API that takes an address takes either form.

    Example:
        ```python
        addr = net.local.addr
        assert mosaik.EndpointAddr.parse(str(addr)) == addr
        ```
    """

    @staticmethod
    def parse(text: str) -> EndpointAddr:
        """Reads ``"<peer id hex>@ip:port[,ip:port...]"``; `ConfigError` naming
        the text if it does not parse.
        """
    @property
    def peer_id(self) -> PeerId:
        """The node's identity; a dialer refuses any other key."""
    @property
    def addrs(self) -> list[str]:
        """The socket addresses, as ``"ip:port"`` strings."""
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...

@final
class NativeNetwork:
    """The native side of `mosaik.Network`: one endpoint, its discovery and its groups."""

    @property
    def local_id(self) -> PeerId:
        """This node's `PeerId`."""
    @property
    def local_addr(self) -> EndpointAddr:
        """This node's advertised address."""
    @property
    def network_id(self) -> Digest:
        """The digest of the network's name."""
    @property
    def closed(self) -> bool:
        """True once `close` ran."""
    def known_peers(self) -> list[EndpointAddr]:
        """The peers in the catalog (waits for its lock without the GIL)."""
    def sync_with(self, addr: EndpointAddr | str) -> Pending[None]:
        """Exchanges catalogs with ``addr`` now."""
    def metrics(self) -> dict[str, float]:
        """The network's metrics (waits for their locks without the GIL)."""
    def join_group(self, join: GroupJoin) -> NativeGroup:
        """Joins the group ``join`` describes; committed commands reach its
        replica on the group's apply thread.
        """
    def close(self) -> Pending[None]:
        """Tells the peers, stops every task and releases the port."""

@final
class ConsensusConfig:
    """Raft timing and quorum parameters every member of a group shares.

    Keyword arguments override the defaults; durations are float seconds or
    a `timedelta`. Every parameter enters `digest`, hence the `GroupId`:
    members with other settings form another group. Invalid values (zero or
    negative durations, a jitter not below its base, a count below 1) raise
    `ConfigError` naming the parameter.

    Example:
        ```python
        consistent = mosaik.ConsensusConfig(min_quorum=2)         # 2 of 3 members
        fast = mosaik.ConsensusConfig(
            heartbeat_interval=0.05,
            heartbeat_jitter=0.01,       # each jitter must stay below its base
            election_timeout=0.4,
            election_timeout_jitter=0.1,
            bootstrap_delay=0.2,
        )
        assert fast.heartbeat_interval == timedelta(milliseconds=50)
        ```
    """

    def __new__(
        cls,
        *,
        heartbeat_interval: float | timedelta | None = None,
        heartbeat_jitter: float | timedelta | None = None,
        max_missed_heartbeats: int | None = None,
        election_timeout: float | timedelta | None = None,
        election_timeout_jitter: float | timedelta | None = None,
        bootstrap_delay: float | timedelta | None = None,
        forward_timeout: float | timedelta | None = None,
        query_timeout: float | timedelta | None = None,
        min_quorum: int | None = None,
        max_command_bytes: int | None = None,
        dedupe_window: int | None = None,
    ) -> ConsensusConfig: ...
    @staticmethod
    def builder() -> ConsensusConfigBuilder:
        """A `mosaik.consensus.ConsensusConfigBuilder`: one
        ``with_<parameter>(value)`` call per parameter, then ``build()``.
        """
    def digest(self) -> Digest:
        """blake3 of every shared parameter (not the leadership factor): the
        part of the `GroupId` that the settings contribute.
        """
    def deprioritize_leadership(self) -> ConsensusConfig:
        """A copy that triples this node's election timeout and bootstrap
        delay, so that it stands for leader after the others. The `GroupId`
        does not change.
        """
    def deprioritize_leadership_by(self, factor: int) -> ConsensusConfig:
        """As `deprioritize_leadership`, by ``factor`` (at least 1)."""
    @property
    def heartbeat_interval(self) -> timedelta:
        """How often the leader sends heartbeats and bonds are checked (default
        500 ms).
        """
    @property
    def heartbeat_jitter(self) -> timedelta:
        """A random part, below ``heartbeat_interval``, taken off each heartbeat
        tick (default 150 ms).
        """
    @property
    def max_missed_heartbeats(self) -> int:
        """Silent heartbeat ticks after which a bond is dropped (default 10)."""
    @property
    def election_timeout(self) -> timedelta:
        """How long a follower waits without hearing from a leader before it
        stands (default 2 s); above ``heartbeat_interval``.
        """
    @property
    def election_timeout_jitter(self) -> timedelta:
        """A random part, below ``election_timeout``, added to each election
        timeout so that candidates rarely collide (default 500 ms).
        """
    @property
    def bootstrap_delay(self) -> timedelta:
        """Extra wait before the first election of a fresh group, so that members
        started together find each other first (default 3 s).
        """
    @property
    def forward_timeout(self) -> timedelta:
        """How long a follower waits for the leader to answer forwarded
        commands before the call raises (default 2 s).
        """
    @property
    def query_timeout(self) -> timedelta:
        """How long a strong query or a barrier waits for the leader to confirm
        a read index (default 2 s).
        """
    @property
    def min_quorum(self) -> int:
        """How many voters, counting this node, must agree before an election
        is won or an entry commits (default 1). 1 is availability-first; a
        majority of the intended group (2 of 3) is consistency-first.
        """
    @property
    def max_command_bytes(self) -> int:
        """The largest encoded command, in bytes (default 16 MiB); a larger one
        raises `CommandTooLarge` at the call.
        """
    @property
    def dedupe_window(self) -> int:
        """How many log entries back a request id is remembered (default
        100,000): a command whose id was applied within them is not applied
        again.
        """
    @property
    def max_batch_bytes(self) -> int:
        """What one batch of commands may hold in all, in bytes, each command
        counted as its encoding, its request id and `COMMAND_OVERHEAD`:
        what one message between members carries. Derived from
        ``max_command_bytes``.
        """
    @property
    def leadership_factor(self) -> int:
        """The multiplier on this node's election timeout and bootstrap delay
        (1 unless deprioritized); not part of the `GroupId`.
        """
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...

@final
class LogReplaySync:
    """How a node that is behind catches up: by replaying the log from its
    peers (the default, and the only kind today).

    A node missing entries goes offline, learns from each bonded peer
    which entries that peer holds, fetches the gap in chunks of
    ``batch_size`` entries spread over them (the leader last), and comes
    back online when it has caught up. Its settings enter the `GroupId`:
    every member must use the same. A state machine chooses them with its
    ``state_sync()`` method.

    Example:
        ```python
        class Orders(mosaik.StateMachine):
            def state_sync(self):
                return mosaik.LogReplaySync(batch_size=500, fetch_timeout=10.0)
        ```
    """

    def __new__(
        cls, batch_size: int | None = None, fetch_timeout: float | timedelta | None = None
    ) -> LogReplaySync: ...
    def signature(self) -> Digest:
        """The digest of its kind and settings: the last part of the `GroupId`."""
    @property
    def batch_size(self) -> int:
        """Entries asked of one peer at a time (default 2,000)."""
    @property
    def fetch_timeout(self) -> timedelta:
        """How long one fetch may take before it is asked of another peer
        (default 25 s).
        """
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...

@final
class LeadershipPreference:
    """How eagerly a node stands for leader; per node, not part of the GroupId.

    A state machine gives it with its ``leadership_preference()`` method, so
    members of one group may differ.

    - `NORMAL`: stands as usual.
    - `reluctant(factor)`: stands, after an election timeout and bootstrap
      delay ``factor`` times longer than the others'.
    - `OBSERVER`: never stands and never counts toward a quorum or an
      election (it abstains), but replicates and applies the log and answers
      weak queries. A group of observers only never has a leader.

    Example:
        ```python
        class Replica(Orders):
            def leadership_preference(self):
                return mosaik.LeadershipPreference.OBSERVER
        ```
    """

    NORMAL: ClassVar[LeadershipPreference]
    """Stands for leader as usual."""
    OBSERVER: ClassVar[LeadershipPreference]
    """Never stands, never counts toward a quorum; replicates and applies."""
    @staticmethod
    def reluctant(factor: int = 3) -> LeadershipPreference:
        """Stands, but only after waiting ``factor`` times longer than a normal
        node (election timeout and bootstrap delay).
        """
    @property
    def kind(self) -> Literal["normal", "observer", "reluctant"]:
        """``"normal"``, ``"observer"`` or ``"reluctant"``."""
    @property
    def factor(self) -> int:
        """The multiplier on election timeout and bootstrap delay (1 unless
        reluctant).
        """
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class NativeGroup:
    """The native side of `mosaik.Group`: one joined group on one network."""

    @property
    def id(self) -> Digest:
        """The `GroupId`."""
    @property
    def active(self) -> bool:
        """False once the group was left or its network closed."""
    def bonds(self) -> list[PeerId]:
        """The peers bonded with this node in this group."""
    def sync_times(self) -> tuple[list[float], list[int], int, float] | None:
        """The disk store's syncs: bucket bounds in seconds, syncs per
        bucket (the last above every bound), their count and total seconds;
        ``None`` for a log in memory."""
    def member_versions(self) -> list[tuple[PeerId, int | None]]:
        """Each bonded peer with the newest machine version it says it runs
        (``None`` when its entry gives no hint for this group)."""
    def propose(
        self,
        commands: list[bytes],
        on_assign: bool,
        requests: list[tuple[bytes, int] | None] | None = None,
    ) -> Pending[Proposal]:
        """Proposes encoded commands (each with its ``(request id, seq)`` when
        ``requests`` gives one); resolves to a `Proposal` once they are
        settled, and applied here unless ``on_assign``.
        """
    def read(self) -> Pending[int | None]:
        """A read index confirmed by the leader, once applied here; ``None``
        when none was confirmed within ``query_timeout``.
        """
    def leader(self) -> PeerId | None:
        """The leader this node knows, if any."""
    def is_leader(self) -> bool:
        """Whether this node leads."""
    def committed(self) -> int:
        """The committed index."""
    def log_position(self) -> Cursor:
        """The position of the last entry of the local log."""
    def online(self) -> bool:
        """Whether this node is online (see `mosaik.When.online`)."""
    def wait_for(self, until: Until) -> Pending[PeerId | int | Cursor | None]:
        """Resolves once the group's status satisfies ``until``."""
    def metrics(self) -> dict[str, float]:
        """The group's metrics."""
    def leave(self) -> Pending[None]:
        """Tells every bonded peer of the departure and stops the group."""

@final
class NetworkOptions:
    """A network's settings, each checked as it is given (what
    `mosaik.NetworkBuilder` collects).
    """

    def __new__(cls, name: str) -> NetworkOptions: ...
    def replace(
        self,
        *,
        secret: bytes | str | None = None,
        addrs: Iterable[str] | None = None,
        advertise: Iterable[str] | None = None,
        bootstrap: Iterable[EndpointAddr | str] | None = None,
        handshake_timeout: float | timedelta | None = None,
        gossip_interval: float | timedelta | None = None,
        entry_ttl: float | timedelta | None = None,
        limits: Limits | None = None,
    ) -> NetworkOptions:
        """A copy with the given settings replaced, checked (`ConfigError`)."""
    @property
    def handshake_timeout(self) -> timedelta:
        """How long a bond handshake may take."""
    @property
    def gossip_interval(self) -> timedelta:
        """How often the node refreshes its entry and syncs with random peers."""
    @property
    def entry_ttl(self) -> timedelta:
        """How long an entry lives without a refresh."""
    @property
    def advertise(self) -> list[str]:
        """The addresses peers dial (empty: the bound ones)."""

@final
class GroupJoin:
    """Everything joining one group needs (`NativeNetwork.join_group`)."""

    def __new__(
        cls,
        *,
        group_id: Digest,
        secret: Digest,
        consensus: ConsensusConfig,
        handshake_timeout: float | timedelta,
        replica: Replica,
        preference: LeadershipPreference,
        state_sync: LogReplaySync,
        disk: tuple[str, int] | None,
        snapshot_every: int,
        machine_signature: Digest,
        machine_version: int,
    ) -> GroupJoin: ...

@final
class Proposal:
    """What became of proposed commands (see `NativeGroup.propose`): the first
    ``done`` committed from index ``first`` on; the rest certainly never
    commit, or, when ``unknown``, may or may not.
    """

    @property
    def first(self) -> int:
        """The index of the first command."""
    @property
    def done(self) -> int:
        """How many commands, from the first, committed (or were assigned
        indices, for a feed).
        """
    @property
    def unknown(self) -> bool:
        """Whether the commands after ``done`` may still commit."""

@final
class Change:
    """How a watched value must move from where it stood when the wait began."""

    ADVANCED: Change
    """Forward."""
    CHANGED: Change
    """Either way."""
    REVERTED: Change
    """Back."""
    def __eq__(self, other: object, /) -> bool: ...
    def __ne__(self, other: object, /) -> bool: ...
    def __int__(self) -> int: ...

@final
class Until:
    """A condition on a group's status to wait for (`NativeGroup.wait_for`)."""

    @staticmethod
    def leader_elected() -> Until:
        """A leader is known (at once if one is)."""
    @staticmethod
    def leader_changed() -> Until:
        """The leader differs from the one known at the start."""
    @staticmethod
    def leader_is(peer: PeerId) -> Until:
        """``peer`` leads."""
    @staticmethod
    def is_leader() -> Until:
        """This node leads."""
    @staticmethod
    def is_follower() -> Until:
        """This node does not lead."""
    @staticmethod
    def online() -> Until:
        """This node is online."""
    @staticmethod
    def offline() -> Until:
        """This node is not online."""
    @staticmethod
    def applied(index: int) -> Until:
        """This node applied ``index``."""
    @staticmethod
    def committed(change: Change) -> Until:
        """The committed index moved as ``change`` says."""
    @staticmethod
    def log_reaches(index: int) -> Until:
        """The local log holds ``index``."""
    @staticmethod
    def log(change: Change) -> Until:
        """The log position moved as ``change`` says."""

def start_network(options: NetworkOptions) -> Pending[NativeNetwork]:
    """Binds and starts a network; resolves to its `NativeNetwork`."""

def group_secret(secret: str | bytes, network: str | None) -> Digest:
    """A group secret from ``secret``: 64 hex characters or 32 bytes as they
    are, anything else a passphrase stretched with Argon2id (salted with
    ``network``). `mosaik.GroupKey.from_secret` calls it.
    """

def live_tasks() -> int:
    """Native tasks of every network in this process still running (for
    tests that check nothing leaks).
    """

def in_flight() -> int:
    """Native operations still in flight (for tests that check nothing leaks)."""

def stop_appliers() -> None:
    """Stops every apply thread from taking the GIL; run at interpreter exit."""

def check_msgpack_depth(data: bytes | bytearray | memoryview) -> None:
    """`mosaik.CodecError` unless ``data`` is one msgpack value nested at most
    `MSGPACK_MAX_DEPTH` containers deep (checked without recursion).
    """

def set_log_level(level: int) -> None:
    """Which native log records reach Python's ``logging``: those at or above
    ``level`` (`mosaik.set_log_level` calls it).
    """
