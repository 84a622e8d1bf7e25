"""A `mosaik node` process started by a test, its stdout lines collected by
a thread so that a test can wait for a line with a time limit."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

MOSAIK = [sys.executable, "-m", "mosaik"]


class Node:
    """A `mosaik node` process whose stdout lines are collected by a thread."""

    def __init__(
        self,
        args: list[str],
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        prefix: Sequence[str] = (),
    ) -> None:
        """``prefix`` goes in front of the command (``ip netns exec NS``)."""
        self.proc = subprocess.Popen(
            [*prefix, *MOSAIK, "node", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, matches: Callable[[str], bool], limit: float, what: str) -> str:
        deadline = time.monotonic() + limit
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                break
            self.seen.append(line)
            if matches(line):
                return line
        raise AssertionError(f"{what} not printed within {limit}s; got {self.seen}")

    def address(self) -> str:
        return self.expect(lambda s: s.startswith("address: "), 15.0, "address").split()[1]

    def stop(self) -> tuple[int, str]:
        """SIGTERM; the exit code and stderr."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10.0)
        finally:
            self.kill()
        assert self.proc.stderr is not None
        return self.proc.returncode, self.proc.stderr.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10.0)
