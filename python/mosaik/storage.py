"""Log storage choices for a group.

Pass one to `GroupBuilder.with_log_storage`. The choice is per node: it is
not part of the `GroupId`, so members of one group may differ.
"""

from __future__ import annotations

import os

from .exceptions import ConfigError

_MIN_SEGMENT_BYTES = 4096


class InMemoryLogStore:
    """The default store: the current term, the vote cast and the log stay
    in memory.

    A node restarted with it comes back empty and catches up from its
    peers; with ``min_quorum`` above 1 it is a learner until then (see the
    consensus rules in the documentation).
    """

    def __repr__(self) -> str:
        return "InMemoryLogStore()"


class DiskLogStore:
    """Stores the current term, the vote cast, the log and the newest
    snapshot under the directory ``path``. A node that is killed and then
    restarted with an unchanged secret key and ``path`` rejoins its group
    holding the log it had.

    The log is a series of segment files of ``segment_bytes`` each, one
    checksummed record per entry; one ``fdatasync`` covers every append
    waiting for it (group commit) and votes and acknowledgements leave the
    node only after it. At start a torn last record is cut; damage anywhere
    else stops the node with `StorageError`. A ``LOCK`` file keeps a second
    process out of the directory.

    The directory is created ``0700`` and its files ``0600``; a directory
    owned by another user or writable by others is refused, and so is one
    that holds another group's log.

    Example:
        ```python
        group = (
            net.groups().with_key(key).with_state_machine(Counter())
            .with_log_storage(mosaik.DiskLogStore("/var/lib/app/counter"))
            .join()
        )
        ```
    """

    __slots__ = ("path", "segment_bytes")

    path: str
    """The directory, made absolute when the store was created."""
    segment_bytes: int
    """The size at which a log segment file is closed and a new one begun
    (at least 4096; default 64 MiB)."""

    def __init__(
        self, path: str | os.PathLike[str], *, segment_bytes: int = 64 * 1024 * 1024
    ) -> None:
        """``path`` is created at ``join`` if missing. `ConfigError` for an
        empty path or a ``segment_bytes`` below 4096; `TypeError` for a path
        that is neither a str nor a path-like."""
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"DiskLogStore path must be a str or path, not {type(path).__name__}")
        if (
            isinstance(segment_bytes, bool)
            or not isinstance(segment_bytes, int)
            or segment_bytes < _MIN_SEGMENT_BYTES
        ):
            raise ConfigError(
                f"invalid segment_bytes {segment_bytes!r}: an int of at least {_MIN_SEGMENT_BYTES}"
            )
        text = os.fspath(path)
        if not text:
            raise ConfigError("DiskLogStore path is empty")
        self.path = os.path.abspath(text)
        self.segment_bytes = segment_bytes

    def __repr__(self) -> str:
        return f"DiskLogStore({self.path!r}, segment_bytes={self.segment_bytes})"


LogStore = InMemoryLogStore | DiskLogStore
"""Either store: what `GroupBuilder.with_log_storage` takes."""


def disk_spec(storage: LogStore) -> tuple[str, int] | None:
    """What the native join needs to open ``storage``: None for memory."""
    if isinstance(storage, DiskLogStore):
        return (storage.path, storage.segment_bytes)
    return None


__all__ = ["DiskLogStore", "InMemoryLogStore", "LogStore"]
