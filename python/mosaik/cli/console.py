"""Rich consoles for stdout and stderr; plain text when not a terminal.

Rich leaves out colours and cursor movement by itself when the stream is not
a terminal (or NO_COLOR is set); ``soft_wrap`` keeps long lines such as
endpoint addresses whole, so scripts can read them.
"""

from __future__ import annotations

import sys
from functools import cache

from rich.console import Console
from rich.markup import escape


@cache
def out() -> Console:
    return Console(file=sys.stdout, soft_wrap=True, highlight=False)


@cache
def err() -> Console:
    return Console(file=sys.stderr, soft_wrap=True, highlight=False)


def is_terminal() -> bool:
    return out().is_terminal


def warn(message: str) -> None:
    """One warning line on stderr; the command goes on."""
    err().print(f"[bold yellow]mosaik: warning:[/] {escape(message)}")


__all__ = ["err", "is_terminal", "out", "warn"]
