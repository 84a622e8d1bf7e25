"""`mosaik node` as on several hosts: three nodes inside a network namespace
this test creates, each listening on the wildcard address and advertising
its own address of the namespace's loopback (127.0.0.2-4), with every new
flow to 127.0.0.1 dropped there, so a node that advertised the loopback
address its wildcard stands for could not be reached. They must form one group.

Needs root (``ip netns``, ``nft``); skips with the reason otherwise."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from nemesis.netns import Namespace, Unavailable, member_address, missing_tools

import mosaik

TIMEOUT = 20.0
PORTS = (7771, 7772, 7773)


class HostNode:
    """A `mosaik node` inside the namespace; its stdout lines on a queue."""

    def __init__(self, ns: Namespace, args: list[str]) -> None:
        command = [sys.executable, "-m", "mosaik", "node", *args]
        self.proc = subprocess.Popen(
            ns.exec_args(command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def expect(self, pattern: str) -> re.Match[str]:
        deadline = time.monotonic() + TIMEOUT
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                break
            self.seen.append(line)
            if found := re.search(pattern, line):
                return found
        raise AssertionError(f"{pattern!r} not printed within {TIMEOUT}s; got {self.seen}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10.0)
        return self.proc.returncode


@contextmanager
def namespace() -> Iterator[Namespace]:
    reason = missing_tools()
    if reason is not None:
        pytest.skip(reason)
    try:
        with Namespace() as ns:
            yield ns
    except Unavailable as why:
        pytest.skip(str(why))


def test_three_nodes_on_wildcard_listeners_advertise_their_own_addresses(
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "group.key"
    key_file.write_text(mosaik.GroupKey.generate().to_hex())
    with namespace() as ns:
        # No node can start talking to 127.0.0.1 in the namespace (replies to
        # it still pass: a wildcard socket sends from it), so a node that
        # advertised the loopback address could not be reached.
        rule = ["nft", "add", "rule", "inet", "nemesis", "output", "ip", "daddr", "127.0.0.1"]
        subprocess.run(ns.exec_args([*rule, "ct", "state", "new", "drop"]), check=True, timeout=10)
        common = ["--key-file", str(key_file), "--timings", "fast", "--status-interval", "0.1"]
        common += ["--min-quorum", "2"]
        nodes: list[HostNode] = []
        try:
            first_address = ""
            for i, port in enumerate(PORTS):
                args = [*common, "--listen", f"0.0.0.0:{port}"]
                args += ["--advertise", f"{member_address(i)}:{port}"]
                if first_address:
                    args += ["--bootstrap", first_address]
                node = HostNode(ns, args)
                nodes.append(node)
                address = node.expect(r"^address: (\S+)").group(1)
                # Exactly the advertised address: never the wildcard, never loopback.
                assert address.split("@")[1] == f"{member_address(i)}:{port}", address
                first_address = first_address or address
            leaders = set()
            for node in nodes:
                status = node.expect(r" status: role=\w+ leader=(?!none)(\w+) .* bonds=2$")
                leaders.add(status.group(1))
            assert len(leaders) == 1, leaders
        finally:
            codes = [node.stop() for node in nodes]
        assert codes == [0, 0, 0], [n.proc.stderr.read() if n.proc.stderr else "" for n in nodes]
