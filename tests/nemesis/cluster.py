"""The driver's side of the member processes: start, pipelined requests over
stdin/stdout, SIGSTOP/SIGCONT, SIGKILL and restart.

Each member runs ``member.py`` inside the namespace with ``ip netns exec``
(which execs, so the process is python itself), in a session and process
group of its own, so that it can be paused and killed as a group.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

from .netns import Namespace, member_address

MEMBER_SCRIPT = Path(__file__).with_name("member.py")
PORT = 7000
START_TIMEOUT = 20.0  # a member process starts, binds and joins
LINE_LIMIT = 64 * 1024 * 1024  # a READ line holds the whole journal
ANSWERS = frozenset(("OK", "OFFLINE", "UNKNOWN", "ERROR", "READ", "QOFFLINE", "QUNKNOWN", "STATUS"))


class MemberGone(Exception):
    """The member process is not running (killed, or it died)."""


class Member:
    """One member process; ``request`` may be called concurrently."""

    def __init__(
        self,
        index: int,
        ns: Namespace,
        workdir: Path,
        key: str,
        min_quorum: int,
        store: str,
        call_limit: float,
        weak_reads: bool,
        on_late: Callable[[int, list[str]], None],
    ) -> None:
        self.index = index
        self.ns = ns
        self.address = member_address(index)
        self.listen = f"{self.address}:{PORT}"
        self.dir = workdir / f"member-{index}"
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.secret_file = self.dir / "secret"
        self.secret_file.write_text(os.urandom(32).hex() + "\n")
        self.secret_file.chmod(0o600)
        self.store_dir = self.dir / "store"
        self.key = key
        self.min_quorum = min_quorum
        self.store = store
        self.call_limit = call_limit
        self.weak_reads = weak_reads
        self.on_late = on_late
        self.proc: asyncio.subprocess.Process | None = None
        self.endpoint = ""  # "<peer-hex>@127.0.0.N:PORT", the same across restarts
        self.peer = ""
        self.paused = False
        self.starts = 0
        self._pending: dict[str, asyncio.Future[list[str]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._stderr: IO[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def start(self, bootstrap: list[str]) -> None:
        assert not self.alive, f"member {self.index} is running"
        args = [
            sys.executable,
            str(MEMBER_SCRIPT),
            "--key",
            self.key,
            "--secret-file",
            str(self.secret_file),
            "--listen",
            self.listen,
            "--min-quorum",
            str(self.min_quorum),
            "--store",
            self.store,
            "--dir",
            str(self.store_dir),
            "--call-limit",
            str(self.call_limit),
        ]
        if self.weak_reads:
            args.append("--weak-reads")
        for peer in bootstrap:
            args += ["--bootstrap", peer]
        self.starts += 1
        self._open_stderr()
        self.proc = await asyncio.create_subprocess_exec(
            *self.ns.exec_args(args),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,
            limit=LINE_LIMIT,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        self.paused = False
        proc = self.proc
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(START_TIMEOUT):
                while True:
                    line = (await proc.stdout.readline()).decode()
                    if not line:
                        raise MemberGone(
                            f"member {self.index} exited at start (see {self._stderr.name})"
                        )
                    words = line.split()
                    if words and words[0] == "ADDR":
                        break
        except BaseException:
            self.kill_now()
            raise
        endpoint = words[1]
        if self.endpoint and endpoint != self.endpoint:
            raise AssertionError(
                f"member {self.index} came back as {endpoint}, not {self.endpoint}"
            )
        self.endpoint = endpoint
        self.peer = endpoint.split("@")[0]
        self._reader = asyncio.create_task(self._read(proc))

    def _open_stderr(self) -> None:
        """A new log file for this start's stderr."""
        if self._stderr is not None:
            self._stderr.close()
        self._stderr = open(self.dir / f"stderr-{self.starts}.log", "wb")  # noqa: SIM115

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        try:
            while line := (await proc.stdout.readline()).decode():
                words = line.split()
                if len(words) < 2 or words[0] not in ANSWERS:
                    continue
                future = self._pending.pop(words[1], None)
                if future is not None and not future.done():
                    future.set_result(words)
                else:
                    self.on_late(self.index, words)
        finally:
            pending, self._pending = self._pending, {}
            for future in pending.values():
                if not future.done():
                    future.set_exception(MemberGone(f"member {self.index} went away"))

    async def request(self, timeout: float, *words: object) -> list[str]:
        """Sends ``VERB OP ARGS...`` and returns the answer's words; raises
        TimeoutError past ``timeout`` and MemberGone if the process is gone."""
        proc = self.proc
        if proc is None or proc.returncode is not None or proc.stdin is None:
            raise MemberGone(f"member {self.index} is not running")
        op = str(words[1])
        future: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._pending[op] = future
        try:
            proc.stdin.write((" ".join(map(str, words)) + "\n").encode())
            return await asyncio.wait_for(future, timeout)
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise MemberGone(f"member {self.index}: {exc}") from exc
        finally:
            if self._pending.get(op) is future:
                del self._pending[op]

    def _signal(self, sig: signal.Signals) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self._signal(signal.SIGCONT)
        self.paused = False

    def kill_now(self) -> None:
        """SIGKILL to the process group (a stopped process dies too)."""
        self._signal(signal.SIGKILL)
        self.paused = False

    async def kill(self) -> None:
        self.kill_now()
        if self.proc is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 10.0)
        if self._reader is not None:
            # asyncio.wait neither cancels the reader nor swallows our own
            # cancellation (Ctrl-C must stop the round).
            await asyncio.wait([self._reader], timeout=5.0)
            self._reader = None

    def close(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


class Cluster:
    """``members`` member processes of one group in ``ns``."""

    def __init__(
        self,
        ns: Namespace,
        workdir: Path,
        size: int,
        store: str,
        call_limit: float,
        min_quorum: int,
        weak_reads: bool,
        on_late: Callable[[int, list[str]], None],
    ) -> None:
        if not 1 <= size <= 250:
            raise ValueError(f"cluster size {size}")
        self.ns = ns
        self.key = os.urandom(32).hex()
        self.min_quorum = min_quorum
        self.members = [
            Member(i, ns, workdir, self.key, min_quorum, store, call_limit, weak_reads, on_late)
            for i in range(size)
        ]
        self._ops = itertools.count(1)

    def next_op(self) -> int:
        return next(self._ops)

    async def start(self) -> None:
        """The first member, then the others bootstrapping from it."""
        first, *rest = self.members
        await first.start([])
        await asyncio.gather(*(m.start([first.endpoint]) for m in rest))

    async def restart(self, member: Member) -> None:
        await member.start([m.endpoint for m in self.members if m is not member])

    async def status(self, member: Member, timeout: float = 1.0) -> tuple[str | None, int, int]:
        """(leader peer hex or None, last log term, committed) of ``member``."""
        words = await member.request(timeout, "STATUS", self.next_op())
        if words[0] != "STATUS" or len(words) < 6:
            raise AssertionError(f"member {member.index}: bad status {' '.join(words)}")
        return (None if words[2] == "none" else words[2], int(words[3]), int(words[5]))

    async def statuses(self, timeout: float = 1.0) -> dict[int, tuple[str | None, int, int]]:
        """The status of every running, unpaused member that answered."""
        live = [m for m in self.members if m.alive and not m.paused]

        async def one(m: Member) -> tuple[str | None, int, int] | None:
            try:
                return await self.status(m, timeout)
            except (TimeoutError, MemberGone):
                return None

        answers = await asyncio.gather(*(one(m) for m in live))
        return {m.index: a for m, a in zip(live, answers, strict=True) if a is not None}

    def by_peer(self, peer: str | None) -> Member | None:
        return next((m for m in self.members if peer is not None and m.peer == peer), None)

    async def leader(self) -> Member | None:
        """The member most of the live ones name as leader (highest term wins a tie)."""
        votes: dict[str, tuple[int, int]] = {}
        for leader, term, _ in (await self.statuses()).values():
            if leader is not None:
                n, t = votes.get(leader, (0, 0))
                votes[leader] = (n + 1, max(t, term))
        if not votes:
            return None
        best = max(votes, key=lambda p: votes[p])
        return self.by_peer(best)

    async def kill_all(self) -> None:
        for m in self.members:
            m.kill_now()
        for m in self.members:
            await m.kill()
            m.close()
