"""Rich consoles for stdout and stderr; plain text when not a terminal.

Rich leaves out colours and cursor movement by itself when the stream is not
a terminal (or NO_COLOR is set); ``soft_wrap`` keeps long lines such as
endpoint addresses whole, so scripts can read them.
"""

from __future__ import annotations

import sys
from functools import cache

from rich.console import Console


@cache
def out() -> Console:
    return Console(file=sys.stdout, soft_wrap=True, highlight=False)


@cache
def err() -> Console:
    return Console(file=sys.stderr, soft_wrap=True, highlight=False)


def is_terminal() -> bool:
    return out().is_terminal


__all__ = ["err", "is_terminal", "out"]
