"""mosaik: Availability Groups for Python.

Nodes that trust one another and hold one secret `GroupKey` connect over
authenticated QUIC, pick a leader through a modified form of Raft, and feed
a replicated log of commands into state machines that are ordinary Python
classes. The hot path is the Rust extension
`mosaik._native`; this package is its typed front.

Everything a program needs is importable from here; `mosaik.blocking` is
the same API for threads, `mosaik.collections` has ready-made replicated
data structures and locks, and `mosaik.metrics` exports to Prometheus.

Example:
    ```python
    import asyncio
    import mosaik

    async def main() -> None:
        key = mosaik.GroupKey.generate()
        async with await mosaik.Network.new("my-app") as net:
            group = net.groups().with_key(key).join()
            print("leader:", await group.when().leader_elected())

    asyncio.run(main())
    ```
"""

import atexit
import logging

from . import codec, groups
from ._native import ConsensusConfig, Digest, EndpointAddr, Limits, LogReplaySync, PeerId
from ._native import set_log_level as _set_log_level
from ._native import stop_appliers as _stop_appliers
from .cursor import ApplyContext, Cursor
from .exceptions import (
    ApplyError,
    CodecError,
    CommandError,
    CommandOffline,
    CommandTooLarge,
    CommandUnknown,
    ConfigError,
    GroupTerminated,
    MosaikError,
    NetworkClosed,
    NetworkError,
    NoCommands,
    QueryError,
    QueryOffline,
    ResultNotKept,
    StorageError,
)
from .group import (
    Bond,
    Bonds,
    CommittedQueryResult,
    Consistency,
    Group,
    GroupBuilder,
    GroupConfig,
    Groups,
)
from .keys import GroupKey
from .network import LocalNode, Network, NetworkBuilder
from .state_machine import LeadershipPreference, NoOp, StateMachine
from .storage import DiskLogStore, InMemoryLogStore
from .when import CursorWatcher, When

# Apply threads must not take the GIL while the interpreter shuts down.
atexit.register(_stop_appliers)


def set_log_level(level: int) -> None:
    """Sets the `mosaik` logger's level and which native records reach it.

    The native layer checks the level before it formats a record, so debug
    records cost nothing until this lets them through; setting the level of
    the ``mosaik`` logger by other means does not tell the native layer.

    Example:
        ```python
        logging.basicConfig()
        mosaik.set_log_level(logging.DEBUG)
        ```
    """
    logging.getLogger("mosaik").setLevel(level)
    _set_log_level(level)


_set_log_level(logging.getLogger("mosaik").getEffectiveLevel())

UniqueId = Digest
"""Another name of `Digest`: any 32-byte blake3 identifier."""
NetworkId = Digest
"""Another name of `Digest`: the id of a network, the digest of its name."""
GroupId = Digest
"""Another name of `Digest`: the id of a group, derived from its key, its
consensus settings, its state machine's signature and its state sync's
signature (see `GroupBuilder.group_id`)."""

__all__ = [
    "ApplyContext",
    "ApplyError",
    "Bond",
    "Bonds",
    "CodecError",
    "CommandError",
    "CommandOffline",
    "CommandTooLarge",
    "CommandUnknown",
    "CommittedQueryResult",
    "ConfigError",
    "ConsensusConfig",
    "Consistency",
    "Cursor",
    "CursorWatcher",
    "Digest",
    "DiskLogStore",
    "EndpointAddr",
    "Group",
    "GroupBuilder",
    "GroupConfig",
    "GroupId",
    "GroupKey",
    "GroupTerminated",
    "Groups",
    "InMemoryLogStore",
    "LeadershipPreference",
    "Limits",
    "LocalNode",
    "LogReplaySync",
    "MosaikError",
    "Network",
    "NetworkBuilder",
    "NetworkClosed",
    "NetworkError",
    "NetworkId",
    "NoCommands",
    "NoOp",
    "PeerId",
    "QueryError",
    "QueryOffline",
    "ResultNotKept",
    "StateMachine",
    "StorageError",
    "UniqueId",
    "When",
    "codec",
    "groups",
    "set_log_level",
]
