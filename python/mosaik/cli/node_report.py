"""What `mosaik node` prints: lines for people, or JSON lines for `mosaik demo`."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime
from typing import Any, Protocol

from rich.markup import escape

from ..group import Group
from ..network import Network
from . import console
from .node_status import NodeStatus


class Reporter(Protocol):
    def started(self, net: Network, group: Group[Any], machine: str) -> None: ...

    def status(self, status: NodeStatus) -> None: ...

    def serving(self, url: str) -> None: ...

    def send(self, message: dict[str, Any]) -> None: ...

    def stopping(self, why: str) -> None: ...


def stamp() -> str:
    """The local time and this process, in front of every status line."""
    now = datetime.now().astimezone()
    return f"{now.isoformat(timespec='milliseconds')} pid={os.getpid()}"


class HumanReporter:
    """Plain lines (coloured on a terminal); a status line, stamped with the
    time and the pid, whenever role, leader or bonds change, and a line when
    the leader is lost or a new one is elected (with how long it took)."""

    def __init__(self) -> None:
        self._last: tuple[str, str | None, int, int] | None = None
        self._leader: str | None = None
        self._started = time.monotonic()
        self._lost: float | None = None  # when the last leader was lost

    def started(self, net: Network, group: Group[Any], machine: str) -> None:
        out = console.out()
        out.print(f"[bold green]mosaik node[/] {net.local.id} (pid {os.getpid()})")
        out.print(f"address: {escape(str(net.local.addr))}")
        out.print(f"group: {group.id}")
        out.print(f"machine: {escape(machine)}")

    def serving(self, url: str) -> None:
        console.out().print(f"metrics: {escape(url)}/metrics (also /status, /healthz)")

    def status(self, status: NodeStatus) -> None:
        if status.shape() == self._last:
            return
        self._last = status.shape()
        out = console.out()
        if status.leader != self._leader:
            now = time.monotonic()
            if self._leader is not None:
                lost = f"leader lost: {self._leader[:12]}"
                out.print(f"{stamp()} [bold red]{escape(lost)}[/]")
                self._lost = now
            if status.leader is not None:
                elected = f"leader elected: {status.leader[:12]} in round {status.round}, "
                if self._lost is None:
                    elected += f"{now - self._started:.2f} s after start"
                else:
                    elected += f"{now - self._lost:.2f} s after the last was lost"
                out.print(f"{stamp()} [bold]{escape(elected)}[/]")
            self._leader = status.leader
        colour = {"leader": "bold magenta", "follower": "cyan"}.get(status.role, "yellow")
        out.print(f"{stamp()} [{colour}]{escape(status.line())}[/]")

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

    def serving(self, url: str) -> None:
        self.send({"event": "serving", "url": url})

    def send(self, message: dict[str, Any]) -> None:
        try:
            sys.stdout.write(json.dumps(message, separators=(",", ":"), default=repr) + "\n")
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):  # the demo went away; stdin EOF stops us
            pass

    def stopping(self, why: str) -> None:
        self.send({"event": "stopping", "why": why})


__all__ = ["HumanReporter", "JsonReporter", "Reporter"]
