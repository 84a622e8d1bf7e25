"""`mosaik keygen`: a new node secret key or group key, as 64 hex characters."""

from __future__ import annotations

from pathlib import Path

import click

from ..keys import GroupKey
from . import console
from .keys import new_key_hex, write_key_file


@click.command()
@click.option(
    "--group",
    "kind",
    flag_value="group",
    help="Make a group key: the shared secret every member of a group needs.",
)
@click.option(
    "--node",
    "kind",
    flag_value="node",
    default=True,
    help="Make a node secret key: one node's identity (the default).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the key to this file (mode 0600) instead of stdout.",
)
@click.option("--force", is_flag=True, help="Overwrite --output if it exists.")
def keygen(kind: str, output: Path | None, force: bool) -> None:
    """Write a new random key as 64 hex characters.

    A node secret key (the default) is the ed25519 seed behind a node's
    PeerId; give it to `mosaik node --secret-key-file`. A group key
    (--group) admits nodes to a group; give every member the same one with
    `mosaik node --key-file`.
    """
    key = GroupKey.generate().to_hex() if kind == "group" else new_key_hex()
    if output is None:
        click.echo(key)
        return
    write_key_file(output, key, force)
    console.err().print(f"wrote a new {kind} key to {output}", markup=False)


__all__ = ["keygen"]
