"""Reading node secret keys and group keys: 64 hex characters, inline or in a file."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from ..keys import GroupKey
from . import console
from .errors import CliError

F = TypeVar("F", bound=Callable[..., Any])

HEX_LENGTH = 64


def inline_key_option(flag: str, what: str, file_flag: str, envvar: str) -> Callable[[F], F]:
    """The option ``flag`` that takes ``what`` inline, as 64 hex characters.

    A key given on the command line is visible to every user of the machine
    (``ps``, ``/proc``), so it is accepted with a warning on stderr that
    points to ``file_flag`` and ``envvar``; from the environment it is not.
    """
    advice = f"prefer {file_flag} or {envvar}"

    def warn_if_on_command_line(
        ctx: click.Context, param: click.Parameter, value: str | None
    ) -> str | None:
        source = None if param.name is None else ctx.get_parameter_source(param.name)
        if value is not None and source is ParameterSource.COMMANDLINE:
            console.warn(f"{flag} puts the {what} on the command line, visible in ps: {advice}")
        return value

    return click.option(
        flag,
        metavar="HEX",
        envvar=envvar,
        callback=warn_if_on_command_line,
        help=f"The {what} as {HEX_LENGTH} hex characters (visible in ps: {advice}).",
    )


def parse_hex_key(text: str, what: str) -> str:
    """``text`` stripped, if it is 64 hex characters; else a `CliError` naming ``what``."""
    value = text.strip()
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(value) != HEX_LENGTH or len(raw) != HEX_LENGTH // 2:
        raise CliError(f"malformed {what}: expected {HEX_LENGTH} hex characters")
    return value.lower()


def read_key_file(path: Path, what: str) -> str:
    """The hex key in ``path``; a `CliError` if it is missing or malformed."""
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise CliError(f"{what} file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {what} file {path}: {exc}") from None
    return parse_hex_key(text, f"{what} file {path}")


def pick_key(inline: str | None, path: Path | None, what: str, flags: str) -> str | None:
    """The key given inline or by file (not both), or None if neither."""
    if inline is not None and path is not None:
        raise CliError(f"give the {what} once: {flags}")
    if path is not None:
        return read_key_file(path, what)
    if inline is not None:
        return parse_hex_key(inline, what)
    return None


def group_key(inline: str | None, path: Path | None) -> GroupKey:
    key = pick_key(inline, path, "group key", "--group-key or --key-file")
    if key is None:
        raise CliError(
            "no group key: pass --key-file or --group-key (make one with `mosaik keygen --group`)"
        )
    return GroupKey.from_hex(key)


def new_key_hex() -> str:
    """64 hex characters from the operating system's random source."""
    return os.urandom(HEX_LENGTH // 2).hex()


KEY_FILE_MODE = 0o600


def write_key_file(path: Path, key: str, force: bool) -> None:
    """Writes ``key`` to ``path``, readable only by its owner.

    The key goes to a new temporary file in the same directory (``0600``,
    ``O_EXCL | O_NOFOLLOW``), is synced, then takes ``path``'s name: renamed
    over it with ``force`` (an existing file keeps nothing, not even its
    mode, and a symbolic link there is replaced, never followed), linked to it
    without (so a ``path`` that exists, even as a link, is refused).
    """
    if not force and os.path.lexists(path):
        raise _exists(path)
    temp = path.with_name(f".{path.name}.{os.urandom(8).hex()}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, KEY_FILE_MODE)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            os.fchmod(file.fileno(), KEY_FILE_MODE)  # whatever the umask
            file.write(key + "\n")
            file.flush()
            os.fsync(file.fileno())
        if force:
            os.replace(temp, path)
        else:
            os.link(temp, path)
        _sync_directory(path.parent)
    except FileExistsError:
        raise _exists(path) from None
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)


def _exists(path: Path) -> CliError:
    return CliError(f"{path} exists already (use --force to overwrite it)")


def _sync_directory(path: Path) -> None:
    """Makes the new name in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = [
    "group_key",
    "inline_key_option",
    "new_key_hex",
    "parse_hex_key",
    "pick_key",
    "read_key_file",
    "write_key_file",
]
