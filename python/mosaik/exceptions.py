"""Every exception mosaik raises. The native module raises these classes too."""

from __future__ import annotations

from typing import Any


class MosaikError(Exception):
    """Base of all mosaik errors."""


class ConfigError(MosaikError, ValueError):
    """A setting, address, key or name is invalid; the message names it."""


class CodecError(MosaikError, TypeError):
    """A value cannot be encoded by the state machine's codec."""


class NetworkError(MosaikError, ConnectionError):
    """A peer could not be reached or refused us.

    ``code`` is the QUIC application close code the peer sent, if any.
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class NetworkClosed(NetworkError):
    """The `Network` was closed."""


class CommandError(MosaikError):
    """A command could not be committed."""


class CommandOffline(CommandError):
    """A promise: ``commands`` were not committed and never will be (no
    leader took them in time, or other entries took their indices). In a
    batch that a leader change cut, the commands before ``commands``
    committed."""

    def __init__(self, message: str, commands: list[Any]) -> None:
        super().__init__(message)
        self.commands = commands


class CommandUnknown(CommandError):
    """``commands`` reached a leader but their outcome is not known: they may
    or may not commit. ``request_id`` is the id the call was made with
    (``None`` without one); retrying with it cannot apply them twice."""

    def __init__(self, message: str, commands: list[Any], request_id: bytes | None = None) -> None:
        super().__init__(message)
        self.commands = commands
        self.request_id = request_id


class CommandTooLarge(CommandError, ValueError):
    """A command's encoding is above the group's ``max_command_bytes`` (or a
    batch's commands in all are above what one message between members
    holds); refused before anything was sent. ``size`` and ``limit`` are in
    bytes."""

    def __init__(self, message: str, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class ApplyError(CommandError):
    """The state machine's ``apply`` raised for the command at ``index``
    (the original exception is ``__cause__``). The command is committed and
    was applied, raising, on every node."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


class ResultNotKept(CommandError):
    """The command at ``index`` is committed and applied, but this node
    reached it inside a snapshot and does not know what ``apply`` returned
    for it. Calling again with the same ``request_id`` (within the group's
    ``dedupe_window``) applies nothing and returns that first outcome,
    which the snapshot kept."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


class NoCommands(CommandError, ValueError):
    """An empty batch of commands was given."""


class QueryError(MosaikError):
    """A query could not be answered."""


class QueryOffline(QueryError):
    """No leader could answer; ``query`` holds the query."""

    def __init__(self, message: str, query: Any) -> None:
        super().__init__(message)
        self.query = query


class GroupTerminated(CommandError, QueryError):
    """The group was left or its network closed."""


class StorageError(MosaikError):
    """A log store cannot be used: its directory is locked by another
    process, or its log or snapshot is damaged (the message names the file
    and the byte offset)."""


__all__ = [
    "ApplyError",
    "CodecError",
    "CommandError",
    "CommandOffline",
    "CommandTooLarge",
    "CommandUnknown",
    "ConfigError",
    "GroupTerminated",
    "MosaikError",
    "NetworkClosed",
    "NetworkError",
    "NoCommands",
    "QueryError",
    "QueryOffline",
    "ResultNotKept",
    "StorageError",
]
