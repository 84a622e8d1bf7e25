"""A network namespace made for one nemesis run, and partitions as nft rules in it.

Nothing outside the namespace is touched: the namespace is created with
``ip netns add``, its loopback brought up, and every rule lives in its own
table ``inet nemesis`` (an ``output`` hook chain, ``ip saddr A ip daddr B
drop``). 127.0.0.0/8 is routed to ``lo`` in a fresh namespace, so members bind
127.0.0.2, 127.0.0.3, ... without any address being added.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterable

PREFIX = "mosaik-nemesis-"
TABLE = "nemesis"
COMMAND_TIMEOUT = 10.0
_counter = itertools.count()


class Unavailable(Exception):
    """Namespaces or nft cannot be used here; the message says why."""


def _run(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


def member_address(i: int) -> str:
    """The address of member ``i`` (0-based): 127.0.0.2, 127.0.0.3, ..."""
    if not 0 <= i < 250:
        raise ValueError(f"member {i} out of range")
    return f"127.0.0.{i + 2}"


def missing_tools() -> str | None:
    """Why the nemesis suite cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (CAP_NET_ADMIN) for ip netns and nft"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            hint = " (make nemesis-deps installs it)" if tool == "nft" else ""
            return f"{tool} is not installed{hint}"
    return None


def remove_stale() -> list[str]:
    """Deletes namespaces of earlier runs whose driver process is gone
    (named ``mosaik-nemesis-<pid>-<n>``), and kills the member processes
    still in them; returns their names."""
    out = _run(["ip", "netns", "list"])
    removed = []
    for line in out.stdout.splitlines():
        words = line.split()
        if not words:
            continue
        m = re.fullmatch(re.escape(PREFIX) + r"(\d+)-(\d+)", words[0])
        if m is None:
            continue
        pid = int(m.group(1))
        if pid == os.getpid() or os.path.exists(f"/proc/{pid}"):
            continue
        # Members a dead driver left behind (a paused one would never exit).
        for member in _run(["ip", "netns", "pids", words[0]]).stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(member), signal.SIGKILL)
        if _run(["ip", "netns", "del", words[0]]).returncode == 0:
            removed.append(words[0])
    return removed


class Namespace:
    """``with Namespace() as ns:`` makes the namespace, deletes it at the end."""

    def __init__(self) -> None:
        self.name = f"{PREFIX}{os.getpid()}-{next(_counter)}"
        self.created = False
        self.cuts: frozenset[tuple[str, str]] = frozenset()

    def __enter__(self) -> Namespace:
        self.create()
        return self

    def __exit__(self, *exc: object) -> None:
        self.delete()

    def create(self) -> None:
        reason = missing_tools()
        if reason is not None:
            raise Unavailable(reason)
        remove_stale()
        out = _run(["ip", "netns", "add", self.name])
        if out.returncode != 0:
            raise Unavailable(f"ip netns add refused: {out.stderr.strip()}")
        self.created = True
        try:
            self._check(self.exec_args(["ip", "link", "set", "lo", "up"]), "ip link set lo up")
            ruleset = (
                f"table inet {TABLE} {{\n"
                "  chain output { type filter hook output priority 0; policy accept; }\n"
                "}\n"
            )
            self._check(self.exec_args(["nft", "-f", "-"]), "nft table", ruleset)
        except Unavailable:
            self.delete()
            raise

    def _check(self, args: list[str], what: str, stdin: str | None = None) -> None:
        out = _run(args, stdin)
        if out.returncode != 0:
            raise Unavailable(f"{what} refused in {self.name}: {out.stderr.strip()}")

    def exec_args(self, args: list[str]) -> list[str]:
        """``args`` run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *args]

    def cut(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Makes the cut pairs exactly ``pairs`` (each cut both ways); an
        empty set heals everything. One atomic nft transaction."""
        wanted = frozenset((min(a, b), max(a, b)) for a, b in pairs if a != b)
        for address in itertools.chain.from_iterable(wanted):
            if not address.startswith("127."):
                raise ValueError(f"only 127.0.0.0/8 inside the namespace: {address}")
        lines = [f"flush chain inet {TABLE} output"]
        for a, b in sorted(wanted):
            lines.append(f"add rule inet {TABLE} output ip saddr {a} ip daddr {b} drop")
            lines.append(f"add rule inet {TABLE} output ip saddr {b} ip daddr {a} drop")
        out = _run(self.exec_args(["nft", "-f", "-"]), "\n".join(lines) + "\n")
        if out.returncode != 0:
            raise RuntimeError(f"nft in {self.name} failed: {out.stderr.strip()}")
        self.cuts = wanted

    def heal(self) -> None:
        self.cut([])

    def rules(self) -> str:
        return _run(self.exec_args(["nft", "list", "table", "inet", TABLE])).stdout

    def delete(self) -> None:
        if self.created:
            _run(["ip", "netns", "del", self.name])
            self.created = False
