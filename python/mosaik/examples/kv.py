"""A replicated key-value store: the state machine behind `mosaik demo`.

It is an ordinary `mosaik.StateMachine` and a good first example to read.

Commands (dicts, so they travel with the default msgpack codec)::

    {"op": "set", "key": "colour", "value": "blue"}
    {"op": "delete", "key": "colour"}

Both are idempotent, so a client may safely retry one whose answer it missed.
The store snapshots itself (``snapshot``/``restore``), so its log is
compacted and a node far behind catches up from a snapshot.
Queries::

    {"op": "get", "key": "colour"}   -> the value, or None
    {"op": "len"}                    -> the number of keys
    {"op": "digest"}                 -> sha256 hex of the canonical state
    "len" / "digest"                 -> the same, as bare strings

`apply` must be deterministic: every node runs it on the same commands in the
same order, so every node ends with the same dict (and the same digest).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..state_machine import StateMachine

Value = str | int | float | bool | None


def canonical(data: dict[str, Value]) -> bytes:
    """A canonical JSON encoding (sorted keys, no spaces) as UTF-8."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def state_digest(data: dict[str, Value]) -> str:
    """sha256 of the canonical encoding."""
    return hashlib.sha256(canonical(data)).hexdigest()


class KeyValue(StateMachine):
    """A dict of string keys to scalar values, replicated by a group."""

    def __init__(self) -> None:
        self.data: dict[str, Value] = {}

    def signature(self) -> str:
        return "mosaik_examples_kv_v1"

    def apply(self, command: Any, ctx: Any) -> None:
        op = command.get("op") if isinstance(command, dict) else None
        if op == "set":
            self.data[str(command["key"])] = command.get("value")
        elif op == "delete":
            self.data.pop(str(command["key"]), None)
        else:
            raise ValueError(f"unknown key-value command {command!r}")

    def snapshot(self) -> bytes:
        """The whole dict, canonically encoded: equal states give equal bytes."""
        return canonical(self.data)

    def restore(self, data: bytes) -> None:
        self.data = json.loads(data)

    def query(self, query: Any) -> Any:
        op = query.get("op") if isinstance(query, dict) else query
        if op == "get":
            return self.data.get(str(query["key"]))
        if op == "len":
            return len(self.data)
        if op == "digest":
            return state_digest(self.data)
        raise ValueError(f"unknown key-value query {query!r}")


__all__ = ["KeyValue", "state_digest"]
