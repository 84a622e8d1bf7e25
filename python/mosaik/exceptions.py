"""Every exception mosaik raises. The native module raises these classes too.

All of them derive from `MosaikError`. The command errors say how much the
node knows about a command's fate: `CommandOffline` (certainly not
committed), `CommandUnknown` (maybe committed), `ApplyError` and
`ResultNotKept` (committed and applied). See the documentation's "Failures
and guarantees" page for what each promises.
"""

from __future__ import annotations

from typing import Any


class MosaikError(Exception):
    """Base of all mosaik errors.

    Example:
        ```python
        try:
            await group.execute(command)
        except mosaik.MosaikError as error:
            log.warning("mosaik said no: %s", error)
        ```
    """


class ConfigError(MosaikError, ValueError):
    """A setting, address, key or name is invalid; the message names it."""


class CodecError(MosaikError, TypeError):
    """A value cannot be encoded by the state machine's codec."""


class NetworkError(MosaikError, ConnectionError):
    """A peer could not be reached or refused us.

    ``code`` is the QUIC application close code the peer sent, if any.
    """

    code: int | None
    """The QUIC application close code the peer closed with (for a refused
    bond, one of `mosaik.groups.CloseReason`), or ``None``."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class NetworkClosed(NetworkError):
    """The `Network` was closed: an operation started on it, or still
    waiting when it closed, cannot go on."""


class CommandError(MosaikError):
    """Base of the errors of the command calls (``execute``, ``feed``,
    ``call`` and their batch forms). The subclass says what became of the
    command; catch this class to handle them all."""


class CommandOffline(CommandError):
    """A guarantee that ``commands`` did not commit and cannot commit later
    (no leader accepted them in time, or different entries took their
    indices). In a
    batch that a leader change cut, the commands before ``commands``
    committed.

    Retrying these commands cannot apply them twice, with or without a
    request id.

    Example:
        ```python
        try:
            await group.execute(command)
        except mosaik.CommandOffline:
            await group.when().online()
            await group.execute(command)    # safe: the first never committed
        ```
    """

    commands: list[Any]
    """The commands that were not committed, in the order given."""

    def __init__(self, message: str, commands: list[Any]) -> None:
        super().__init__(message)
        self.commands = commands


class CommandUnknown(CommandError):
    """``commands`` reached a leader but their outcome is not known: they may
    or may not commit. ``request_id`` is the id the call was made with
    (``None`` without one); retrying with it cannot apply them twice.

    Example:
        ```python
        rid = uuid.uuid4().bytes
        try:
            await group.execute(command, request_id=rid)
        except mosaik.CommandUnknown as error:
            # Applied at most once, whether the first attempt committed or not.
            await group.execute(command, request_id=error.request_id)
        ```
    """

    commands: list[Any]
    """The commands whose outcome is unknown, in the order given (for a
    batch made with a request id, the whole batch)."""
    request_id: bytes | None
    """The request id the call was made with, ``None`` without one."""

    def __init__(self, message: str, commands: list[Any], request_id: bytes | None = None) -> None:
        super().__init__(message)
        self.commands = commands
        self.request_id = request_id


class CommandTooLarge(CommandError, ValueError):
    """A command's encoding is above the group's ``max_command_bytes`` (or a
    batch's commands in all are above what one message between members
    holds); refused before anything was sent. ``size`` and ``limit`` are in
    bytes. Also a `ValueError`."""

    size: int
    """Bytes of the refused command (or batch), encoded."""
    limit: int
    """The limit it went over: ``max_command_bytes`` for one command,
    ``max_batch_bytes`` for a batch."""

    def __init__(self, message: str, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class ApplyError(CommandError):
    """The state machine's ``apply`` raised for the command at ``index``
    (the original exception is ``__cause__``). The command is committed and
    was applied, raising, on every node.

    Only ``call`` and ``call_many`` raise it: ``execute`` returns the index
    of a command whose ``apply`` raised, since the group committed it.

    Example:
        ```python
        try:
            value = await group.call({"withdraw": 500})
        except mosaik.ApplyError as error:
            print("rejected at index", error.index, "because", error.__cause__)
        ```
    """

    index: int
    """The log index of the command whose ``apply`` raised."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


class ResultNotKept(CommandError):
    """The command at ``index`` is committed and applied, but this node
    reached it inside a snapshot and does not know what ``apply`` returned
    for it. Calling again with the same ``request_id`` (within the group's
    ``dedupe_window``) applies nothing and returns that first outcome,
    which the snapshot kept."""

    index: int
    """The log index of the command, committed and applied."""

    def __init__(self, message: str, index: int) -> None:
        super().__init__(message)
        self.index = index


class NoCommands(CommandError, ValueError):
    """An empty batch of commands was given (``execute_many([])``, say);
    nothing was sent. Also a `ValueError`."""


class QueryError(MosaikError):
    """Base of the errors of ``query`` and ``barrier``: the query could not
    be answered. A query changes nothing, so it is always safe to retry."""


class QueryOffline(QueryError):
    """No leader confirmed a read index within ``query_timeout``, so a
    strong query (or a barrier) could not be answered; ``query`` holds the
    query. Weak queries never raise it."""

    query: Any
    """The query that was not answered (``None`` for a barrier)."""

    def __init__(self, message: str, query: Any) -> None:
        super().__init__(message)
        self.query = query


class GroupTerminated(CommandError, QueryError):
    """The group was left or its network closed: every later call on the
    `Group` raises it. A command that was waiting may or may not have
    committed. Join again (on an open `Network`) to get a new handle."""


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
