"""What `mosaik node` prints: lines for people, or JSON lines for `mosaik demo`."""

from __future__ import annotations

import json
import sys
from typing import Any, Protocol

from rich.markup import escape

from ..group import Group
from ..network import Network
from . import console
from .node_status import NodeStatus


class Reporter(Protocol):
    def started(self, net: Network, group: Group[Any], machine: str) -> None: ...

    def status(self, status: NodeStatus) -> None: ...

    def send(self, message: dict[str, Any]) -> None: ...

    def stopping(self, why: str) -> None: ...


class HumanReporter:
    """Plain lines (coloured on a terminal); a status line whenever role,
    leader or bonds change."""

    def __init__(self) -> None:
        self._last: tuple[str, str | None, int] | None = None

    def started(self, net: Network, group: Group[Any], machine: str) -> None:
        out = console.out()
        out.print(f"[bold green]mosaik node[/] {net.local.id}")
        out.print(f"address: {escape(str(net.local.addr))}")
        out.print(f"group: {group.id}")
        out.print(f"machine: {escape(machine)}")

    def status(self, status: NodeStatus) -> None:
        if status.shape() == self._last:
            return
        self._last = status.shape()
        colour = {"leader": "bold magenta", "follower": "cyan"}.get(status.role, "yellow")
        console.out().print(f"[{colour}]{escape(status.line())}[/]")

    def send(self, message: dict[str, Any]) -> None:
        console.out().print(escape(json.dumps(message)))

    def stopping(self, why: str) -> None:
        console.err().print(f"{escape(why)}: leaving the group and closing the network")


class JsonReporter:
    """One JSON object per line on stdout: ``ready``, ``status``, ``reply``."""

    def started(self, net: Network, group: Group[Any], machine: str) -> None:
        self.send(
            {
                "event": "ready",
                "id": str(net.local.id),
                "addr": str(net.local.addr),
                "group": str(group.id),
                "machine": machine,
            }
        )

    def status(self, status: NodeStatus) -> None:
        self.send({"event": "status", **status.to_json()})

    def send(self, message: dict[str, Any]) -> None:
        try:
            sys.stdout.write(json.dumps(message, separators=(",", ":"), default=repr) + "\n")
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):  # the demo went away; stdin EOF stops us
            pass

    def stopping(self, why: str) -> None:
        self.send({"event": "stopping", "why": why})


__all__ = ["HumanReporter", "JsonReporter", "Reporter"]
