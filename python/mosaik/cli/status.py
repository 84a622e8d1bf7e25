"""`mosaik status URL`: a running node's ``/status`` (see `mosaik node --metrics`), for people."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import click
from rich.markup import escape

from . import console
from .errors import CliError

TIMEOUT = 5.0


def fetch(url: str) -> dict[str, Any]:
    """The JSON of ``url``'s ``/status`` (``url`` with or without the path)."""
    if "://" not in url:
        url = f"http://{url}"
    if not url.rstrip("/").endswith("/status"):
        url = url.rstrip("/") + "/status"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as answer:
            document: dict[str, Any] = json.load(answer)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise CliError(f"cannot read {url}: {getattr(exc, 'reason', exc)}") from None
    return document


@click.command()
@click.argument("url")
def status(url: str) -> None:
    """Print a node's status, read from the URL its --metrics serves
    (e.g. 127.0.0.1:9100 or http://node1:9100/status)."""
    doc = fetch(url)
    leader = doc.get("leader") or "none"
    lines = [
        f"node {doc['id']} (pid {doc['pid']}) at {doc['address']}",
        f"group {doc['group']}",
        f"role {doc['role']}, leader {leader}, election round {doc['round']}",
        f"online {'yes' if doc['online'] else 'no'}; committed {doc['committed']}, "
        f"applied {doc['applied']}, last log index {doc['log']['last_index']}",
        f"bonds {doc['bonds']}: " + (", ".join(p[:12] for p in doc["peers"]) or "none"),
    ]
    out = console.out()
    for line in lines:
        out.print(escape(line))


__all__ = ["status"]
