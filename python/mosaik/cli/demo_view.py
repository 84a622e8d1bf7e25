"""What `mosaik demo` shows: a live table on a terminal, plain lines otherwise."""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import TracebackType
from typing import Protocol

from rich.console import Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import console
from .demo_nodes import NodeProcess

ROLE_STYLE = {"leader": "bold magenta", "follower": "cyan", "electing": "yellow"}


def short(peer: str) -> str:
    return peer[:8] if peer else "-"


def row(node: NodeProcess) -> tuple[str, str, str, str, str, str, str]:
    """name, peer, role, round, committed, bonds, throughput as text."""
    status = node.status
    if not node.alive or not status:
        return (node.name, short(node.id), "down", "-", "-", "-", "-")
    return (
        node.name,
        short(node.id),
        str(status["role"]),
        str(status["round"]),
        str(status["committed"]),
        str(status["bonds"]),
        f"{node.throughput():.0f}/s",
    )


def node_table(nodes: Sequence[NodeProcess]) -> Table:
    table = Table(title="mosaik demo: replicated key-value store", title_justify="left")
    for name in ("node", "peer", "role", "round", "committed", "bonds", "throughput"):
        table.add_column(name, justify="right" if name in ("committed", "bonds") else "left")
    for node in nodes:
        cells = row(node)
        style = ROLE_STYLE.get(cells[2], "red")
        table.add_row(*cells[:2], f"[{style}]{cells[2]}[/]", *cells[3:])
    return table


class View(Protocol):
    def __enter__(self) -> View: ...

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def event(self, text: str, style: str = "") -> None: ...

    def snapshot(self) -> None: ...

    def progress(self, label: str, done: int, total: int) -> None: ...

    def progress_end(self) -> None: ...


class Clock:
    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def stamp(self) -> str:
        return f"[{time.monotonic() - self._t0:6.2f}s]"


class LiveView:
    """A rich Live table of the nodes, the workload's progress bar below it,
    and events scrolling above."""

    def __init__(self, nodes: Sequence[NodeProcess]) -> None:
        self._nodes = nodes
        self._clock = Clock()
        self._progress: Progress | None = None
        self._live = Live(get_renderable=self._render, console=console.out(), refresh_per_second=8)

    def _render(self) -> RenderableType:
        parts: list[RenderableType] = [node_table(self._nodes)]
        if self._progress is not None:
            parts.append(self._progress)
        return Group(*parts)

    def __enter__(self) -> LiveView:
        self._live.start()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._live.stop()

    def event(self, text: str, style: str = "") -> None:
        line = f"[dim]{self._clock.stamp()}[/] {escape(text)}"
        self._live.console.print(f"[{style}]{line}[/]" if style else line)

    def snapshot(self) -> None:
        self._live.refresh()

    def progress(self, label: str, done: int, total: int) -> None:
        if self._progress is None:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            self._progress.add_task(label, total=total)
        task = self._progress.tasks[0].id
        self._progress.update(task, description=label, completed=done, total=total)

    def progress_end(self) -> None:
        self._progress = None


class PlainView:
    """Lines only: events as they happen, the table at milestones, progress
    in quarters."""

    def __init__(self, nodes: Sequence[NodeProcess]) -> None:
        self._nodes = nodes
        self._clock = Clock()
        self._quarter = -1

    def __enter__(self) -> PlainView:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def event(self, text: str, style: str = "") -> None:
        console.out().print(f"{self._clock.stamp()} {text}", markup=False)

    def snapshot(self) -> None:
        for node in self._nodes:
            name, peer, role, ballot_round, committed, bonds, rate = row(node)
            console.out().print(
                f"    {name} {peer} role={role} round={ballot_round} committed={committed} "
                f"bonds={bonds} throughput={rate}",
                markup=False,
            )

    def progress(self, label: str, done: int, total: int) -> None:
        quarter = 4 * done // max(total, 1)
        if quarter != self._quarter:
            self._quarter = quarter
            self.event(f"{label}: {done}/{total} commands")

    def progress_end(self) -> None:
        self._quarter = -1


def make_view(nodes: Sequence[NodeProcess]) -> View:
    return LiveView(nodes) if console.is_terminal() else PlainView(nodes)


__all__ = ["LiveView", "PlainView", "View", "make_view"]
