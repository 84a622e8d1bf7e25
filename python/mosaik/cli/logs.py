"""The shared ``--log-level`` option: logging to stderr, tracebacks at debug."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import click

import mosaik

F = TypeVar("F", bound=Callable[..., Any])

LEVELS = ("debug", "info", "warning", "error")


def configure(level_name: str) -> None:
    """Sends log records at ``level_name`` and above to stderr."""
    level = getattr(logging, level_name.upper())
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    set_level: Callable[[int], None] | None = getattr(mosaik, "set_log_level", None)
    if set_level is not None:
        set_level(level)  # also the records of the native core
    else:
        logging.getLogger("mosaik").setLevel(level)


def _on_level(ctx: click.Context, param: click.Parameter, value: str) -> str:
    configure(value)
    return value


def log_level_option(func: F) -> F:
    return click.option(
        "--log-level",
        type=click.Choice(LEVELS, case_sensitive=False),
        default="warning",
        show_default=True,
        is_eager=True,
        expose_value=False,
        callback=_on_level,
        help="Log to stderr from this level; debug also shows tracebacks of errors.",
    )(func)


__all__ = ["LEVELS", "configure", "log_level_option"]
