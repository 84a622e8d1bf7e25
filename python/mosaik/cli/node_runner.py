"""Runs one long-lived node: start the network, join the group, report, move
the group to newer machine code once every member runs it, stop cleanly on
SIGINT/SIGTERM (closing the network sends `Departure` to peers)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .._native import ConsensusConfig
from .._versions import supported_version
from ..exceptions import CommandError, ConfigError, NetworkError, StorageError
from ..group import Group
from ..keys import GroupKey
from ..network import Network
from ..storage import DiskLogStore
from .control import ControlServer
from .errors import CliError, one_line
from .http_status import StatusServer
from .machines import load_machine
from .node_report import HumanReporter, JsonReporter, Reporter
from .node_status import NodeStatus

START_TIMEOUT = 10.0
CLOSE_TIMEOUT = 5.0


# Field metadata marking a key: `repr` shows such a field as <secret>.
SECRET = "secret"


@dataclass(frozen=True)
class NodeSettings:
    """What `mosaik node` was told; `repr` and `str` never show a key."""

    network: str
    listen: str
    advertise: tuple[str, ...]
    bootstrap: tuple[str, ...]
    group_key: GroupKey = field(metadata={SECRET: True})
    secret_key: str | None = field(metadata={SECRET: True})
    machine: str
    consensus: ConsensusConfig
    metrics: tuple[str, int] | None
    data_dir: Path | None
    gossip_interval: float
    bootstrap_timeout: float
    status_interval: float
    control: bool

    def __repr__(self) -> str:
        shown = []
        for f in fields(self):
            value = getattr(self, f.name)
            hidden = f.metadata.get(SECRET) and value is not None
            shown.append(f"{f.name}={'<secret>' if hidden else repr(value)}")
        return f"{type(self).__name__}({', '.join(shown)})"


async def start_network(settings: NodeSettings) -> Network:
    builder = (
        Network.builder(settings.network)
        .with_addresses([settings.listen])
        .with_advertised_addresses(settings.advertise)
        .with_bootstrap(settings.bootstrap)
        .with_gossip_interval(settings.gossip_interval)
    )
    if settings.secret_key is not None:
        builder = builder.with_secret_key(settings.secret_key)
    try:
        return await asyncio.wait_for(builder.build(), START_TIMEOUT)
    except ConfigError as exc:
        raise CliError(f"cannot start the node: {one_line(str(exc))}") from exc
    except TimeoutError:
        raise CliError(f"the node did not start within {START_TIMEOUT:g}s") from None


async def reach_bootstrap(net: Network, peers: Sequence[str], limit: float) -> None:
    """Returns once a catalog exchange with one of ``peers`` succeeded.

    Fatal (a `CliError`) if none answers within ``limit`` seconds: a node told to
    join through given peers that cannot reach any of them is misconfigured,
    and running alone would only hide that.
    """
    if not peers:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    last = "no answer"
    while loop.time() < deadline:
        for peer in peers:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(net.sync_with(peer), remaining)
                return
            except TimeoutError:
                last = "no answer"
            except NetworkError as exc:
                last = one_line(str(exc))
        await asyncio.sleep(max(0.0, min(0.5, deadline - loop.time())))
    raise CliError(f"bootstrap peer unreachable within {limit:g}s: {', '.join(peers)} ({last})")


def install_stop_signals(stop: asyncio.Event, why: list[str]) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):

        def on_signal(name: str = sig.name) -> None:
            why.append(f"got {name}")
            stop.set()

        loop.add_signal_handler(sig, on_signal)


class Upgrader:
    """Switches the group to the newest machine version this node's code
    applies, when this node leads and every member runs code that applies
    it: every bonded peer announces it, and as many members are bonded as
    the most this node has seen bonded at once since it started (a member
    that is away may still run old code; one that went away before this
    node started is not known of)."""

    def __init__(self, group: Group[Any]) -> None:
        self._group = group
        self._newest = supported_version(group.machine)
        self._most_members = 1

    async def step(self) -> None:
        group = self._group
        members = group.member_versions()
        self._most_members = max(self._most_members, len(members) + 1)
        if not group.is_leader() or group.machine_version >= self._newest:
            return
        if len(members) + 1 < self._most_members:
            return
        if any(v is None or v < self._newest for v in members.values()):
            return
        # Not committed now (a leader change, a peer that changed meanwhile):
        # the next round tries again.
        with suppress(CommandError, ConfigError):
            await group.upgrade(self._newest)


async def report_until(
    group: Group[Any], reporter: Reporter, interval: float, stop: asyncio.Event
) -> None:
    """Reports the status every ``interval`` seconds until ``stop`` is set,
    upgrading the group's machine version when it can."""
    upgrader = Upgrader(group)
    while not stop.is_set():
        reporter.status(NodeStatus.of(group))
        await upgrader.step()
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


async def serve(net: Network, settings: NodeSettings, reporter: Reporter, machine: Any) -> str:
    """Joins the group and serves until stopped; says why it stopped."""
    stop = asyncio.Event()
    why: list[str] = []
    # From here on SIGINT/SIGTERM stop the node cleanly, also while it
    # waits for its bootstrap peers.
    install_stop_signals(stop, why)
    group = join_group(net, settings, machine)
    reporter.started(net, group, settings.machine)
    http = None
    if settings.metrics is not None:
        http = StatusServer(net, group, *settings.metrics)
        reporter.serving(http.url)
    try:
        return await serve_group(net, group, settings, reporter, stop, why)
    finally:
        if http is not None:
            http.close()


async def serve_group(
    net: Network,
    group: Group[Any],
    settings: NodeSettings,
    reporter: Reporter,
    stop: asyncio.Event,
    why: list[str],
) -> str:
    """Waits for a bootstrap peer, then reports until stopped."""
    reaching = asyncio.ensure_future(
        reach_bootstrap(net, settings.bootstrap, settings.bootstrap_timeout)
    )
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({reaching, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not reaching.done():
        reaching.cancel()
        with suppress(asyncio.CancelledError):
            await reaching
        return why[0] if why else "stopped"
    reaching.result()  # a bootstrap that failed raises here
    control = None
    if settings.control:
        control = asyncio.create_task(ControlServer(group, reporter, stop).run())
    try:
        await report_until(group, reporter, settings.status_interval, stop)
    finally:
        if control is not None:
            control.cancel()
            with suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(control, CLOSE_TIMEOUT)
    return why[0] if why else "end of input"


def join_group(net: Network, settings: NodeSettings, machine: Any) -> Group[Any]:
    """The node's group, its log on disk under --data-dir if given."""
    builder = (
        net.groups()
        .with_key(settings.group_key)
        .with_state_machine(machine)
        .with_consensus_config(settings.consensus)
    )
    if settings.data_dir is not None:
        builder = builder.with_log_storage(DiskLogStore(settings.data_dir))
    try:
        return builder.join()
    except (ConfigError, StorageError) as exc:
        raise CliError(f"--data-dir {settings.data_dir}: {one_line(str(exc))}") from exc


async def run_node(settings: NodeSettings) -> None:
    machine = load_machine(settings.machine)  # fail on a bad machine before binding a port
    reporter: Reporter = JsonReporter() if settings.control else HumanReporter()
    net = await start_network(settings)
    try:
        reporter.stopping(await serve(net, settings, reporter, machine))
    finally:
        with suppress(TimeoutError):
            await asyncio.wait_for(net.close(), CLOSE_TIMEOUT)


__all__ = ["NodeSettings", "reach_bootstrap", "run_node"]
