"""The `mosaik` command line (also `python -m mosaik`).

`main` runs the click group with settings from MOSAIK_* environment
variables and turns every failure into one line on stderr and a non-zero
exit code; with `--log-level debug` a traceback follows unexpected errors.
"""

from __future__ import annotations

import sys
import traceback

import click

from . import console
from .errors import debugging, describe, one_line

INTERRUPTED = 130


def _fail(message: str, code: int) -> int:
    console.err().print(f"[bold red]mosaik: error:[/] {one_line(message)}", markup=True)
    return code


def _usage_error(exc: click.UsageError) -> int:
    where = exc.ctx.command_path if exc.ctx is not None else "mosaik"
    return _fail(f"{where}: {exc.format_message()} (see --help)", exc.exit_code)


def run(argv: list[str] | None = None) -> int:
    """Runs the command line; its exit code."""
    from .app import cli

    try:
        code = cli.main(
            args=argv, prog_name="mosaik", standalone_mode=False, auto_envvar_prefix="MOSAIK"
        )
    except click.UsageError as exc:
        return _usage_error(exc)
    except click.ClickException as exc:
        if debugging() and exc.__cause__ is not None:
            traceback.print_exception(exc.__cause__)
        return _fail(exc.format_message(), exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        return _fail("interrupted", INTERRUPTED)
    except Exception as exc:
        if debugging():
            traceback.print_exc()
        return _fail(describe(exc), 1)
    return code if isinstance(code, int) else 0


def main() -> None:
    """The `mosaik` console script."""
    sys.exit(run())


__all__ = ["main", "run"]
