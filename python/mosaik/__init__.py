"""mosaik: Availability Groups for Python.

Trusted nodes that share a secret `GroupKey` bond over authenticated QUIC,
elect a leader with a modified Raft and replicate a log of commands to state
machines written as plain Python classes. The hot path is the Rust extension
`mosaik._native`; this package is its typed front.
"""

from . import groups
from ._native import Digest, EndpointAddr, PeerId
from .exceptions import (
    CodecError,
    CommandError,
    CommandOffline,
    ConfigError,
    GroupTerminated,
    MosaikError,
    NetworkClosed,
    NetworkError,
    NoCommands,
    QueryError,
    QueryOffline,
)
from .network import LocalNode, Network, NetworkBuilder

UniqueId = Digest
NetworkId = Digest
GroupId = Digest

__all__ = [
    "CodecError",
    "CommandError",
    "CommandOffline",
    "ConfigError",
    "Digest",
    "EndpointAddr",
    "GroupId",
    "GroupTerminated",
    "LocalNode",
    "MosaikError",
    "Network",
    "NetworkBuilder",
    "NetworkClosed",
    "NetworkError",
    "NetworkId",
    "NoCommands",
    "PeerId",
    "QueryError",
    "QueryOffline",
    "UniqueId",
    "groups",
]
