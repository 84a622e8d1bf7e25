"""The line protocol `mosaik demo` uses to drive a node over stdin/stdout.

Requests are JSON objects, one per line on stdin::

    {"id": 1, "op": "execute", "command": {"op": "set", "key": "k", "value": 1}}
    {"id": 2, "op": "query", "query": "digest", "consistency": "weak"}
    {"op": "quit"}

Each request with an id gets one reply line on stdout::

    {"event": "reply", "id": 1, "ok": true, "index": 17}
    {"event": "reply", "id": 2, "ok": true, "result": "ab12...", "position": 17}
    {"event": "reply", "id": 1, "ok": false, "error": "offline"}

Requests run concurrently (at most `MAX_IN_FLIGHT`), each bounded by
`CALL_TIMEOUT`. End of stdin stops the node, so a node never outlives the
process that drives it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from ..exceptions import CommandOffline, CommandUnknown, MosaikError, QueryOffline
from ..group import Consistency, Group
from .errors import describe
from .node_report import Reporter

CALL_TIMEOUT = 5.0
MAX_IN_FLIGHT = 256
READ_TIMEOUT = 1.0


async def stdin_reader() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def answer(group: Group[Any], request: dict[str, Any]) -> dict[str, Any]:
    """Runs one request; the reply fields besides ``event`` and ``id``."""
    op = request.get("op")
    try:
        if op == "execute":
            index = await asyncio.wait_for(group.execute(request["command"]), CALL_TIMEOUT)
            return {"ok": True, "index": index}
        if op == "query":
            strong = request.get("consistency") == "strong"
            level = Consistency.STRONG if strong else Consistency.WEAK
            res = await asyncio.wait_for(group.query(request["query"], level), CALL_TIMEOUT)
            return {"ok": True, "result": res.result, "position": res.at_position}
    except (CommandOffline, QueryOffline):
        return {"ok": False, "error": "offline"}
    except CommandUnknown:
        return {"ok": False, "error": "unknown"}
    except TimeoutError:
        return {"ok": False, "error": "timeout"}
    except (MosaikError, KeyError, TypeError, ValueError) as exc:
        return {"ok": False, "error": describe(exc)}
    return {"ok": False, "error": f"unknown op {op!r}"}


class ControlServer:
    """Reads requests from stdin until EOF or ``quit``, then sets ``stop``."""

    def __init__(self, group: Group[Any], reporter: Reporter, stop: asyncio.Event) -> None:
        self._group = group
        self._reporter = reporter
        self._stop = stop
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        reader = await stdin_reader()
        try:
            while not self._stop.is_set():
                try:
                    line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
                except TimeoutError:
                    continue
                if not line or not self._handle(line):
                    break
        finally:
            self._stop.set()
            for task in self._tasks:
                task.cancel()

    def _handle(self, line: bytes) -> bool:
        """Starts one request; False when the driver said quit."""
        try:
            request = json.loads(line)
        except ValueError:
            self._reporter.send({"event": "error", "error": "a line that is not JSON"})
            return True
        if not isinstance(request, dict):
            return True
        if request.get("op") == "quit":
            return False
        if len(self._tasks) >= MAX_IN_FLIGHT:
            self._reply(request, {"ok": False, "error": "busy"})
            return True
        task = asyncio.create_task(self._serve(request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _serve(self, request: dict[str, Any]) -> None:
        self._reply(request, await answer(self._group, request))

    def _reply(self, request: dict[str, Any], fields: dict[str, Any]) -> None:
        self._reporter.send({"event": "reply", "id": request.get("id"), **fields})


__all__ = ["CALL_TIMEOUT", "ControlServer", "answer"]
