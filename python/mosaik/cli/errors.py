"""How the command line reports failures: one line on stderr, a non-zero exit."""

from __future__ import annotations

import logging

import click


class CliError(click.ClickException):
    """A problem the user can fix; shown as one line, without a traceback."""

    exit_code = 1


def one_line(text: str) -> str:
    """``text`` squeezed onto a single line."""
    return " ".join(str(text).split())


def describe(exc: BaseException) -> str:
    """A one-line description of an unexpected exception."""
    message = one_line(str(exc))
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def debugging() -> bool:
    """True when `--log-level debug` asked for tracebacks."""
    return logging.getLogger("mosaik").isEnabledFor(logging.DEBUG)


__all__ = ["CliError", "debugging", "describe", "one_line"]
