"""`mosaik node`: one long-lived node for real deployments."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from . import keys
from .addresses import DEFAULT_LISTEN, advertised_addresses, bind_address, listen_address
from .logs import log_level_option
from .machines import DEFAULT_MACHINE
from .node_runner import NodeSettings, run_node
from .timings import PRESETS, consensus_for

KEY_PATH = click.Path(dir_okay=False, path_type=Path)


@click.command()
@click.option("--network", default="mosaik", show_default=True, help="Network name.")
@click.option(
    "--listen",
    default=DEFAULT_LISTEN,
    show_default=True,
    metavar="HOST:PORT",
    help="Address to bind (a hostname resolves; port 0: any free port).",
)
@click.option(
    "--advertise",
    multiple=True,
    metavar="HOST:PORT",
    help="Address peers dial, when it is not the one bound (a wildcard --listen, NAT); "
    "a hostname resolves to all its addresses. Repeatable.",
)
@click.option(
    "--bootstrap",
    multiple=True,
    metavar="PEER@IP:PORT",
    help="A peer's address as printed by `mosaik node` (repeatable).",
)
@click.option("--key-file", type=KEY_PATH, help="File holding the group key (64 hex chars).")
@keys.inline_key_option("--group-key", "group key", "--key-file", "MOSAIK_NODE_GROUP_KEY")
@click.option(
    "--secret-key-file",
    type=KEY_PATH,
    help="File holding this node's secret key (`mosaik keygen`); default: a random one.",
)
@keys.inline_key_option(
    "--secret-key", "node's secret key", "--secret-key-file", "MOSAIK_NODE_SECRET_KEY"
)
@click.option(
    "--state-machine",
    default=DEFAULT_MACHINE,
    show_default=True,
    metavar="MODULE:CLASS",
    help="The replicated state machine; the class must take no arguments.",
)
@click.option(
    "--timings",
    type=click.Choice(PRESETS),
    default="default",
    show_default=True,
    help="Consensus timings; every member must use the same.",
)
@click.option(
    "--min-quorum",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Voters (this node included) an election or a commit needs; set a majority of "
    "the group (2 of 3, 3 of 5) so that no partition makes two leaders. Every member "
    "must use the same.",
)
@click.option(
    "--metrics",
    metavar="HOST:PORT",
    help="Serve GET /metrics (Prometheus), /status (JSON) and /healthz (200 online, 503 "
    "not) here; needs the extra mosaik[metrics] (this project's wheel installed as "
    "'mosaik-<version>-<tags>.whl[metrics]', or pip install '.[metrics]' in a checkout). "
    "Default: off.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the term, vote, log and snapshots here (created if missing), so that a "
    "restart with the same secret key rejoins with its log; default: in memory.",
)
@click.option(
    "--bootstrap-timeout",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Give up (exit 1) if no bootstrap peer answers within this many seconds.",
)
@click.option(
    "--gossip-interval",
    type=click.FloatRange(min=0.05),
    default=3.0,
    show_default=True,
    help="Seconds between discovery refreshes.",
)
@click.option(
    "--status-interval",
    type=click.FloatRange(min=0.05),
    default=0.5,
    show_default=True,
    help="Seconds between status checks (a line is printed when something changes).",
)
@click.option("--control", is_flag=True, hidden=True, help="JSON lines on stdin/stdout.")
@log_level_option
def node(
    network: str,
    listen: str,
    advertise: tuple[str, ...],
    bootstrap: tuple[str, ...],
    key_file: Path | None,
    group_key: str | None,
    secret_key_file: Path | None,
    secret_key: str | None,
    state_machine: str,
    timings: str,
    min_quorum: int,
    metrics: str | None,
    data_dir: Path | None,
    bootstrap_timeout: float,
    gossip_interval: float,
    status_interval: float,
    control: bool,
) -> None:
    """Run one node of a group until SIGINT or SIGTERM.

    Prints the node's address; give it to other nodes as --bootstrap. Every
    member needs the same group key, network name, state machine and
    timings. Each option can also be set in the environment as
    MOSAIK_NODE_<OPTION>, e.g. MOSAIK_NODE_NETWORK or MOSAIK_NODE_GROUP_KEY.
    An unreachable --bootstrap peer is fatal after --bootstrap-timeout.
    """
    bound = listen_address(listen)
    settings = NodeSettings(
        network=network,
        listen=bound,
        advertise=tuple(advertised_addresses(advertise, bound)),
        bootstrap=bootstrap,
        group_key=keys.group_key(group_key, key_file),
        secret_key=keys.pick_key(
            secret_key, secret_key_file, "secret key", "--secret-key or --secret-key-file"
        ),
        machine=state_machine,
        consensus=consensus_for(timings, min_quorum),
        metrics=None if metrics is None else bind_address(metrics, "--metrics"),
        data_dir=data_dir,
        gossip_interval=gossip_interval,
        bootstrap_timeout=bootstrap_timeout,
        status_interval=status_interval,
        control=control,
    )
    asyncio.run(run_node(settings))


__all__ = ["node"]
