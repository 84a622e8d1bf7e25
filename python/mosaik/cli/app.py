"""The `mosaik` command group and its subcommands."""

from __future__ import annotations

import click

from .demo import demo
from .keygen import keygen
from .node import node
from .status import status

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="mosaik", prog_name="mosaik")
def cli() -> None:
    """mosaik: Availability Groups for Python.

    Nodes holding one group key connect over authenticated QUIC, choose a
    leader, and keep a state machine in step by replicating a log of
    commands. `mosaik demo` shows this on your machine; `mosaik node` runs one
    node for real; `mosaik status` reads a running node's status.
    """


cli.add_command(demo)
cli.add_command(node)
cli.add_command(keygen)
cli.add_command(status)

__all__ = ["cli"]
