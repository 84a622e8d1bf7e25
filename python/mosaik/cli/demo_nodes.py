"""The node processes of `mosaik demo`: ``python -m mosaik node --control``
children driven with JSON lines (see `mosaik.cli.control`).

Every child is killed when the demo ends, however it ends: `Cluster.close`
in the normal path and an atexit hook as the last resort.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import signal
import sys
import time
from collections import deque
from contextlib import suppress
from typing import Any

from .errors import CliError

NETWORK = "mosaik-demo"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 3.0
STATUS_INTERVAL = 0.2
THROUGHPUT_WINDOW = 1.5

_LIVE_PIDS: set[int] = set()


@atexit.register
def _kill_leftovers() -> None:
    for pid in list(_LIVE_PIDS):
        with suppress(OSError):
            os.kill(pid, signal.SIGKILL)


class DemoError(CliError):
    """The demo could not go on; exit code 1."""

    exit_code = 1


def child_env(group_key: str, secret: str) -> dict[str, str]:
    """The environment of a node: ours without MOSAIK_* settings, plus the keys
    (passed this way, the keys do not show in ``ps``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOSAIK_")}
    env.update(MOSAIK_NODE_GROUP_KEY=group_key, MOSAIK_NODE_SECRET_KEY=secret, PYTHONUNBUFFERED="1")
    return env


def node_args(bootstrap: list[str]) -> list[str]:
    args = [sys.executable, "-m", "mosaik", "node", "--control", "--network", NETWORK]
    args += ["--listen", "127.0.0.1:0"]  # several nodes on one host: any free port
    args += ["--timings", "fast", "--gossip-interval", "0.5", "--bootstrap-timeout", "10"]
    args += ["--status-interval", str(STATUS_INTERVAL)]
    for addr in bootstrap:
        args += ["--bootstrap", addr]
    return args


class NodeProcess:
    """One node child: its latest status, and requests with replies."""

    def __init__(self, name: str, secret: str) -> None:
        self.name = name
        self.secret = secret
        self.addr = ""
        self.id = ""
        self.status: dict[str, Any] = {}
        self.samples: deque[tuple[float, int]] = deque(maxlen=64)
        self.stderr: deque[str] = deque(maxlen=20)
        self._proc: asyncio.subprocess.Process | None = None
        self._ready: asyncio.Future[None] | None = None
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def start(self, group_key: str, bootstrap: list[str]) -> None:
        self.status = {}
        self.samples.clear()
        self._ready = asyncio.get_running_loop().create_future()
        self._proc = await asyncio.create_subprocess_exec(
            *node_args(bootstrap),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=child_env(group_key, self.secret),
        )
        _LIVE_PIDS.add(self._proc.pid)
        self._tasks = [
            asyncio.create_task(self._read_stdout()),
            asyncio.create_task(self._read_stderr()),
        ]
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), START_TIMEOUT)
        except TimeoutError:
            raise DemoError(f"{self.name} did not start within {START_TIMEOUT:g}s") from None

    async def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            with suppress(ValueError):
                self._on_message(json.loads(line))
        self._ended()

    async def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        while line := await self._proc.stderr.readline():
            self.stderr.append(line.decode(errors="replace").rstrip())

    def _on_message(self, message: dict[str, Any]) -> None:
        event = message.get("event")
        if event == "ready":
            self.addr, self.id = message["addr"], message["id"]
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
        elif event == "status":
            self.status = message
            self.samples.append((time.monotonic(), int(message["committed"])))
        elif event == "reply":
            future = self._replies.pop(message.get("id", -1), None)
            if future is not None and not future.done():
                future.set_result(message)

    def _ended(self) -> None:
        self.status = {}
        if self._ready is not None and not self._ready.done():
            last = self.stderr[-1] if self.stderr else "no output"
            self._ready.set_exception(DemoError(f"{self.name} exited at start: {last}"))
        for future in self._replies.values():
            if not future.done():
                future.set_result({"ok": False, "error": "node exited"})
        self._replies.clear()

    async def call(self, request: dict[str, Any], limit: float) -> dict[str, Any]:
        """Sends one request; its reply, or ``{"ok": False, ...}``."""
        proc = self._proc
        if proc is None or proc.returncode is not None or proc.stdin is None:
            return {"ok": False, "error": "node not running"}
        self._next_id += 1
        ident = self._next_id
        future = asyncio.get_running_loop().create_future()
        self._replies[ident] = future
        try:
            proc.stdin.write((json.dumps({**request, "id": ident}) + "\n").encode())
            return await asyncio.wait_for(future, limit)
        except (TimeoutError, ConnectionError):
            return {"ok": False, "error": "no reply"}
        finally:
            self._replies.pop(ident, None)

    def throughput(self) -> float:
        """Committed entries per second over the last moments."""
        now = time.monotonic()
        recent = [(t, c) for t, c in self.samples if now - t <= THROUGHPUT_WINDOW]
        if len(recent) < 2 or recent[-1][0] <= recent[0][0]:
            return 0.0
        return (recent[-1][1] - recent[0][1]) / (recent[-1][0] - recent[0][0])

    def kill(self) -> None:
        """SIGKILL: no goodbye to the peers."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()

    async def stop(self) -> None:
        """Asks the node to leave; kills it if it does not within `STOP_TIMEOUT`."""
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None and proc.stdin is not None:
            with suppress(ConnectionError, RuntimeError):
                proc.stdin.write(b'{"op":"quit"}\n')
        try:
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
        except TimeoutError:
            proc.kill()
            with suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
        finally:
            await self._reap()

    async def _reap(self) -> None:
        if self._proc is not None and self._proc.returncode is not None:
            _LIVE_PIDS.discard(self._proc.pid)
        if self._tasks:  # let the readers see the end of output first
            _, pending = await asyncio.wait(self._tasks, timeout=1.0)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=STOP_TIMEOUT)
        self._tasks = []
        self.status = {}

    async def wait_killed(self) -> None:
        if self._proc is not None:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._proc.wait(), STOP_TIMEOUT)
            await self._reap()


__all__ = ["DemoError", "NodeProcess"]
