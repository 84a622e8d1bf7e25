"""`Network`: one node on a mosaik network, and the builder that starts it.

A network is named; nodes on networks of other names never bond. Each
`Network` object is one node with its own identity, QUIC endpoint and
discovery catalog; several may live in one process.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType

from . import _bridge, _native
from ._durations import Duration
from ._native import Digest, EndpointAddr, PeerId
from .group import Groups
from .groups import Config as GroupsConfig


class LocalNode:
    """This node as others see it: its `PeerId` and `EndpointAddr`."""

    __slots__ = ("_native",)

    def __init__(self, native: _native.NativeNetwork) -> None:
        self._native = native

    @property
    def id(self) -> PeerId:
        """This node's `PeerId` (its ed25519 public key)."""
        return self._native.local_id

    @property
    def addr(self) -> EndpointAddr:
        """The address peers dial: the `PeerId` and the advertised socket
        addresses. ``str(addr)`` is what another node passes as a bootstrap
        peer."""
        return self._native.local_addr

    def __repr__(self) -> str:
        return f"LocalNode({self.addr})"


class Network:
    """A node on a mosaik network. Start one with `Network.new` or `Network.builder`.

    Close it with `close` or an ``async with`` block: closing tells the
    peers, leaves every group joined on it and releases the port.

    Example:
        ```python
        async with await mosaik.Network.new("my-app") as a:
            b = await (
                mosaik.Network.builder("my-app")
                .with_bootstrap([a.local.addr])
                .build()
            )
            ...
            await b.close()
        ```
    """

    __slots__ = ("_groups", "_native")

    def __init__(self, native: _native.NativeNetwork, groups_config: GroupsConfig) -> None:
        self._native = native
        self._groups = Groups(native, groups_config)

    @staticmethod
    async def new(name: str) -> Network:
        """A node with a random identity on 127.0.0.1, port chosen by the OS."""
        return await NetworkBuilder(name).build()

    @staticmethod
    def builder(name: str) -> NetworkBuilder:
        """A `NetworkBuilder` of a node on the network ``name``: set the
        identity, addresses, bootstrap peers and limits, then ``build()``."""
        return NetworkBuilder(name)

    @property
    def local(self) -> LocalNode:
        """This node as others see it: its `PeerId` and `EndpointAddr`."""
        return LocalNode(self._native)

    @property
    def network_id(self) -> Digest:
        """The `NetworkId`: the digest of the network's name."""
        return self._native.network_id

    @property
    def groups_config(self) -> GroupsConfig:
        """The settings of this network's groups subsystem."""
        return self._groups.config

    def groups(self) -> Groups:
        """The groups API of this network: the same `Groups` at every call."""
        return self._groups

    def known_peers(self) -> list[EndpointAddr]:
        """The peers in this node's discovery catalog."""
        return self._native.known_peers()

    async def sync_with(self, addr: EndpointAddr | str) -> None:
        """Exchanges peer catalogs with ``addr`` now."""
        await _bridge.watch(self._native.sync_with(addr))

    def metrics(self) -> dict[str, float]:
        """This node's metrics now, by name: the discovery and connection
        series and the totals over its groups (``mosaik.groups.active``,
        ``mosaik.groups.bonds.active``, ...). See the monitoring page for
        the list; `mosaik.metrics` exposes them to Prometheus."""
        return self._native.metrics()

    async def close(self) -> None:
        """Stops all tasks, tells peers and releases the port. Idempotent."""
        await _bridge.watch(self._native.close())

    @property
    def closed(self) -> bool:
        """True once the network was closed."""
        return self._native.closed

    async def __aenter__(self) -> Network:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"Network(id={self.local.id}, closed={self.closed})"


class NetworkBuilder:
    """Configures a `Network` before it starts; every ``with_*`` returns the builder.

    Each setting is checked when it is given (`ConfigError` naming it).

    Example:
        ```python
        net = await (
            mosaik.Network.builder("my-app")
            .with_secret_key(open("node.key").read().strip())
            .with_addresses(["127.0.0.1:7770"])
            .with_bootstrap(["<peer id hex>@127.0.0.1:7771"])
            .build()
        )
        ```
    """

    def __init__(self, name: str) -> None:
        """A builder of a node on the network ``name`` (`ConfigError` if
        empty); same as `Network.builder`."""
        self._options = _native.NetworkOptions(name)
        self._groups = GroupsConfig()

    def with_secret_key(self, secret: bytes | str) -> NetworkBuilder:
        """The node's ed25519 seed: 32 bytes or 64 hex characters."""
        self._options = self._options.replace(secret=secret)
        return self

    def with_addresses(self, addrs: Iterable[str]) -> NetworkBuilder:
        """The first address is bound; all are advertised. Default 127.0.0.1:0.
        A list of ``"ip:port"`` strings (one string alone is refused)."""
        self._options = self._options.replace(addrs=addrs)
        return self

    def with_advertised_addresses(self, addrs: Iterable[str]) -> NetworkBuilder:
        """The addresses peers dial (``"ip:port"`` strings), advertised
        instead of the bound ones: for a node bound to ``0.0.0.0`` or behind
        NAT. Each needs a specific IP and a port. Empty: the bound ones."""
        self._options = self._options.replace(advertise=addrs)
        return self

    def with_bootstrap(self, peers: Iterable[EndpointAddr | str]) -> NetworkBuilder:
        """Peers to exchange catalogs with at start (retried until reached)."""
        self._options = self._options.replace(bootstrap=peers)
        return self

    def with_groups(self, config: GroupsConfig) -> NetworkBuilder:
        """The settings of the groups subsystem (`mosaik.groups.Config`)."""
        self._options = self._options.replace(handshake_timeout=config.handshake_timeout)
        self._groups = config
        return self

    def with_gossip_interval(self, interval: Duration) -> NetworkBuilder:
        """How often the node refreshes its entry and syncs with random peers."""
        self._options = self._options.replace(gossip_interval=interval)
        return self

    def with_entry_ttl(self, ttl: Duration) -> NetworkBuilder:
        """How long an entry lives without a refresh before it is purged."""
        self._options = self._options.replace(entry_ttl=ttl)
        return self

    def with_limits(self, limits: _native.Limits) -> NetworkBuilder:
        """The caps that bound what peers can make this node do (connections
        before they bond, refusals, dials, catalog size); see `mosaik.Limits`."""
        if not isinstance(limits, _native.Limits):
            raise TypeError(f"with_limits takes a mosaik.Limits, not {type(limits).__name__}")
        self._options = self._options.replace(limits=limits)
        return self

    async def build(self) -> Network:
        """Starts the node: binds its address and begins discovery with the
        bootstrap peers. Returns once the endpoint is up, not once a peer
        answered."""
        native = await _bridge.watch(_native.start_network(self._options))
        return Network(native, self._groups)


__all__ = ["LocalNode", "Network", "NetworkBuilder"]
