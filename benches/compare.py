"""mosaik side by side with PySyncObj, measured in the same run on this machine.

For each system three node processes on 127.0.0.1 hold a replicated counter
whose apply is Python code; a client inside the leader process drives load
(see benches/compare_nodes/). Besides, fresh clusters hold each system's
ready-made replicated dict and counter (mosaik.collections Map and Counter,
PySyncObj's ReplDict and ReplCounter) under the same pipelined load. Writes
benches/results/latest.md and benches/results/latest.png. See
benches/README.md for what each row means.

Usage: python benches/compare.py [--quick | --smoke] [--reps N] [--only W,...] [--out DIR]
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import platform
import queue
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
NODES = HERE / "compare_nodes"
RESULTS = HERE / "results"
MOSAIK = "mosaik"
PSO = "PySyncObj"
PSO_NOBATCH = "PySyncObj (no batch)"
SYSTEMS = (MOSAIK, PSO, PSO_NOBATCH)
MOSAIK_DISK = "mosaik (DiskLogStore)"
PSO_JOURNAL = "PySyncObj (journalFile)"
DURABLE_SYSTEMS = (MOSAIK_DISK, PSO_JOURNAL)
OURS = (MOSAIK, MOSAIK_DISK)
FAILED = "FAILED"
# What the nodes hold (their --workload): the plain counter of the main rows,
# or one of the collections rows' (row key, label, PySyncObj's column).
COUNTER = "counter"
COLLECTIONS = {
    "map": ("map_w2000", "Map.insert", "PySyncObj ReplDict"),
    "ctr": ("ctr_w2000", "Counter.add", "PySyncObj ReplCounter"),
}
# What --only can pick.
PARTS = (
    "seq",
    "w100",
    "w2000",
    "w20000",
    "w200000",
    "many",
    *COLLECTIONS,
    "durable",
    "failover",
    "sizes",
    "reads",
)
PARTS += ("overload", "memory")

_LIVE: set[subprocess.Popen[str]] = set()


def _kill_all() -> None:
    for proc in list(_LIVE):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        _LIVE.discard(proc)


atexit.register(_kill_all)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that atexit runs


class BenchFailure(Exception):
    """A run whose result must be reported as FAILED, with the reason."""


class Node:
    """A node process and a thread that queues the lines it prints."""

    def __init__(self, name: str, argv: list[str], logdir: Path) -> None:
        self.name = name
        self.log_path = logdir / f"{name}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            bufsize=1,
            cwd=HERE,
        )
        _LIVE.add(self.proc)
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def recv(self, timeout: float) -> list[str]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise BenchFailure(f"{self.name}: no answer within {timeout:.0f} s") from None
        if line is None:
            raise BenchFailure(f"{self.name} exited; see {self.log_path}")
        return line.split()

    def ask(self, line: str, timeout: float) -> list[str]:
        self.send(line)
        return self.recv(timeout)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise BenchFailure(f"{self.name}: no VmRSS")

    def sigkill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=5)
        _LIVE.discard(self.proc)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self.send("quit")
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        _LIVE.discard(self.proc)
        self._log.close()


def free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class Cluster:
    system: str
    logdir: Path
    workload: str = COUNTER
    # mosaik's counter snapshots (and so compacts its log), as PySyncObj does.
    snapshots: bool = False
    # Members; mosaik's min_quorum is their majority.
    size: int = 3
    nodes: list[Node] = field(default_factory=list)
    acked: int = 0
    verified: bool = False
    notes: list[str] = field(default_factory=list)
    # Figures of the workloads done so far; each pipelined workload checks
    # that all 3 counters reached the acknowledged count (which covers the
    # sequential commands before it), so a later failure does not void them.
    values: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The system, and the collection it holds if any (for notes and failures)."""
        if self.workload == COUNTER:
            return self.system
        _, op, theirs = COLLECTIONS[self.workload]
        return f"{self.system} {op}" if self.system in OURS else theirs

    def disk(self, i: int) -> list[str]:
        """A fresh place on disk for node ``i`` of a durable system."""
        if self.system not in DURABLE_SYSTEMS:
            return []
        data = Path(tempfile.mkdtemp(prefix=f"node{i}-", dir=self.logdir))
        if self.system == MOSAIK_DISK:
            return ["--data-dir", str(data)]
        return ["--journal", str(data / "journal")]

    def start(self) -> None:
        ours = self.system in OURS
        workload = [] if self.workload == COUNTER else ["--workload", self.workload]
        if ours:
            workload += ["--snapshots"] if self.snapshots else []
            import mosaik  # the driver only uses it to make a key

            key = mosaik.GroupKey.generate().to_hex()
            script = str(NODES / "mosaik_node.py")
            workload += ["--min-quorum", str(self.size // 2 + 1)]
            argv = [script, "--key", key, *workload, *self.disk(0)]
            first = Node("mosaik-0", argv, self.logdir)
            self.nodes.append(first)
            addr = first.recv(20)[1]
            for i in range(1, self.size):
                argv = [script, "--key", key, "--bootstrap", addr, *workload, *self.disk(i)]
                self.nodes.append(Node(f"mosaik-{i}", argv, self.logdir))
        else:
            ports = free_ports(self.size)
            addrs = [f"127.0.0.1:{p}" for p in ports]
            extra = ["--no-batch"] if self.system == PSO_NOBATCH else []
            extra += workload
            for i, addr in enumerate(addrs):
                argv = [str(NODES / "pysyncobj_node.py"), "--self", addr, *extra, *self.disk(i)]
                for other in addrs:
                    if other != addr:
                        argv += ["--partner", other]
                self.nodes.append(Node(f"pysyncobj-{i}", argv, self.logdir))
        for node in self.nodes[1 if ours else 0 :]:
            node.recv(20)  # ADDR
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            st = self.statuses()
            leaders = [s for s in st if s[0] == 1]
            if len(leaders) == 1 and all(s[1] == 1 and s[3] == self.size - 1 for s in st):
                return
            time.sleep(0.05)
        raise BenchFailure(f"{self.label}: no stable leader within 30 s")

    def statuses(self, nodes: list[Node] | None = None) -> list[tuple[int, int, int, int]]:
        out = []
        for node in nodes or self.nodes:
            w = node.ask("status", 10)
            out.append((int(w[1]), int(w[2]), int(w[3]), int(w[4])))
        return out

    @property
    def leader(self) -> Node:
        for node, st in zip(self.nodes, self.statuses(), strict=True):
            if st[0] == 1:
                return node
        raise BenchFailure(f"{self.label}: no leader")

    def followers(self, leader: Node) -> list[Node]:
        return [n for n in self.nodes if n is not leader]

    def converge(self, nodes: list[Node], want: int | None, timeout: float) -> list[int]:
        """Waits until the counters are equal (and equal to ``want``); returns them."""
        deadline = time.monotonic() + timeout
        while True:
            values = [s[2] for s in self.statuses(nodes)]
            if len(set(values)) == 1 and (want is None or values[0] == want):
                return values
            if time.monotonic() > deadline:
                raise BenchFailure(
                    f"{self.label}: counters {values} != acknowledged {want} after {timeout:.1f} s"
                )
            time.sleep(0.02)

    def check(self) -> None:
        if self.verified:
            return
        self.converge(self.nodes, self.acked, 15)

    def close(self) -> None:
        for node in self.nodes:
            node.stop()


# -- workloads: each returns {metric: value} or raises BenchFailure ----------


def sequential(c: Cluster, seconds: float, limit: int) -> dict[str, float]:
    w = c.leader.ask(f"seq {seconds} {limit}", seconds + 30)
    count, failed, elapsed = int(w[1]), int(w[2]), float(w[3])
    c.acked += count
    if failed:
        raise BenchFailure(f"{c.label}: {failed} sequential commands failed")
    return {"ops": count / elapsed, "p50": float(w[4]), "p99": float(w[5])}


def applied_everywhere(c: Cluster, command: str, expect: int, cap: float) -> float:
    """Runs ``command`` on the leader; commits/s counted once applied on every member.

    Commands the system rejected (an error answer) are not counted and are
    noted in the report; the run fails if any command went unanswered or a
    node does not reach the acknowledged count.
    """
    leader = c.leader
    followers = c.followers(leader)
    for f in followers:
        f.send(f"wait {c.acked + expect} {cap + 20} 2.0")
    w = leader.ask(command, cap + 30)
    acked, failed, lost, start, last = int(w[1]), int(w[2]), int(w[3]), float(w[4]), float(w[5])
    c.acked += acked
    if failed:
        c.notes.append(f"{c.label}, `{command}`: {failed} of {acked + failed} rejected ({w[6]})")
    if lost:
        raise BenchFailure(f"{c.label}: {command!r}: {lost} commands never answered")
    ends = [last]
    for f in followers:
        r = f.recv(cap + 30)
        if int(r[1]) == c.acked:
            ends.append(float(r[2]))
            continue
        # The follower stood still for 2 s short of the total: give it 30 s
        # more, timed from here by polling (20 ms resolution).
        try:
            c.converge([f], c.acked, 30)
        except BenchFailure as exc:
            raise BenchFailure(f"{exc} ({f.name}, a follower, during `{command}`)") from None
        ends.append(time.monotonic())
        c.notes.append(
            f"{c.label}, `{command}`: {f.name} stalled at {r[1]} of {c.acked}, "
            f"caught up {ends[-1] - start:.1f} s after the start"
        )
    return acked / (max(ends) - start)


def failover(c: Cluster, before: float, after: float) -> float:
    leader = c.leader
    survivors = c.followers(leader)
    leader.send("pipe 100 1000000000 60 1")
    for s in survivors:
        s.send(f"probe 0.005 {before + after}")
    time.sleep(before)
    killed = time.monotonic()
    leader.sigkill()
    firsts = []
    acked = 0
    for s in survivors:
        w = s.recv(before + after + 20)
        acked += int(w[1])
        if w[3] != "-":
            for pair in w[3].split(","):
                sent, ack = (float(x) for x in pair.split(":"))
                if sent > killed:
                    firsts.append(ack - killed)
    values = c.converge(survivors, None, 10)
    c.verified = True  # some commands die with the leader: the check is done here
    if values[0] < acked:
        raise BenchFailure(f"{c.label}: survivors at {values[0]} < {acked} acknowledged")
    if not firsts:
        raise BenchFailure(f"{c.label}: no commit within {after} s of the kill")
    return min(firsts)


def overload(c: Cluster, window: int, seconds: float, limit: float) -> float:
    w = c.leader.ask(f"pipe {window} 1000000000 {seconds} {limit}", seconds + limit + 30)
    acked, failed, lost, start = int(w[1]), int(w[2]), int(w[3]), float(w[4])
    c.acked += acked
    stop = start + seconds
    if failed:
        c.notes.append(f"{c.label}, overload: {failed} of {acked + failed} rejected ({w[6]})")
    if lost:
        values = [st[2] for st in c.statuses()]
        raise BenchFailure(
            f"{c.label}: {lost} of {acked + failed + lost} commands unanswered {limit} s "
            f"after the load; counters {values}, acknowledged {c.acked}"
        )
    try:
        c.converge(c.nodes, c.acked, max(0.0, stop + limit - time.monotonic()))
    except BenchFailure as exc:
        raise BenchFailure(f"{exc} (acked {acked}, rejected {failed})") from None
    return time.monotonic() - stop


WHOLE_LOG = ("rss_log", "entry_bytes")  # the rows of `memory` with the whole log kept


def memory(c: Cluster, total: int) -> tuple[float, float]:
    """The largest RSS after ``total`` commands, and the largest growth per
    command (what each retained entry costs when the whole log is kept)."""
    before = [n.rss_mb() for n in c.nodes]
    applied_everywhere(c, f"pipe 1000 {total} 180 30", total, 180)
    c.check()
    after = [n.rss_mb() for n in c.nodes]
    growth = max(a - b for a, b in zip(after, before, strict=True))
    return max(after), growth * (1 << 20) / total


# -- the run ----------------------------------------------------------------


@dataclass
class Row:
    label: str
    unit: str
    higher_is_better: bool
    ours: list[float | str] = field(default_factory=list)
    theirs: list[float | str] = field(default_factory=list)
    theirs_system: str = PSO


class Results:
    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.notes: list[str] = []

    def row(self, key: str, label: str, unit: str, higher: bool, theirs: str = PSO) -> Row:
        if key not in self.rows:
            self.rows[key] = Row(label, unit, higher, theirs_system=theirs)
        return self.rows[key]

    def add(self, key: str, system: str, value: float | str) -> None:
        row = self.rows[key]
        (row.ours if system in OURS else row.theirs).append(value)


def median(values: list[float | str]) -> float | str | None:
    if not values:
        return None
    fails = [v for v in values if isinstance(v, str)]
    if fails:
        return f"{FAILED} ({len(fails)}/{len(values)})"
    return statistics.median([float(v) for v in values])


Body = Callable[["Cluster"], dict[str, float]]


def run_cluster(
    system: str,
    logdir: Path,
    body: Body,
    keys: list[str],
    res: Results,
    workload: str = COUNTER,
    snapshots: bool = False,
    size: int = 3,
) -> None:
    """Starts a fresh cluster, runs ``body``, checks the counters, records."""
    c = Cluster(system, logdir, workload, snapshots, size)
    try:
        c.start()
        c.values.update(body(c))
        c.check()
        for key in keys:
            res.add(key, system, c.values[key])
    except (BenchFailure, OSError) as exc:
        print(f"  FAILED: {exc}", flush=True)
        res.notes.append(f"FAILED: {exc}")
        for key in keys:
            res.add(key, system, c.values.get(key, FAILED))
    finally:
        res.notes += c.notes
        c.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a few hundred commands, < 40 s")
    parser.add_argument("--quick", action="store_true", help="1 repetition, shorter runs")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 3)")
    parser.add_argument(
        "--only",
        type=lambda text: [part.strip() for part in text.split(",") if part.strip()],
        default=None,
        help=f"run only these parts, comma-separated, of: {','.join(PARTS)}; "
        "needs --out (a partial run never replaces benches/results)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    smoke, quick = args.smoke, args.quick
    only = set(PARTS if args.only is None else args.only)
    if only - set(PARTS):
        parser.error(f"--only: unknown {','.join(sorted(only - set(PARTS)))}; pick of {PARTS}")
    if args.only is not None and args.out.resolve() == RESULTS.resolve():
        parser.error("--only writes a partial report: give it --out DIR (not benches/results)")
    reps = args.reps or (1 if smoke or quick else 3)
    seq_seconds = 0.5 if smoke else 1.5 if quick else 5.0
    seq_limit = 200 if smoke else 10_000_000
    windows = (
        [(100, 300), (2000, 600)]
        if smoke
        else [
            (100, 20_000),
            (2000, 40_000 if quick else 60_000),
            (20_000, 100_000 if quick else 200_000),
            (200_000, 400_000 if quick else 1_000_000),
        ]
    )
    # The collections rows: as many commands as the plain counter's W=2,000.
    w2000_total = dict(windows)[2000]
    windows = [(w, total) for w, total in windows if f"w{w}" in only]
    collections = [name for name in COLLECTIONS if name in only]
    run_seq = "seq" in only
    run_many = "many" in only
    many_batches = 1 if smoke else 50 if quick else 200
    kills = 0 if smoke or "failover" not in only else 1 if quick else 5
    overloads = 0 if smoke or "overload" not in only else 1 if quick else 3
    memory_total = 0 if smoke or "memory" not in only else 200_000 if quick else 1_000_000
    durable = "durable" in only
    run_reads = "reads" in only
    reads_total = 2_000 if smoke else 200_000 if quick else 400_000
    # Larger groups (mosaik only): sequential latency and pipelined W=2,000.
    sizes = [] if smoke or "sizes" not in only else [5, 7]

    res = Results()
    if run_seq:
        res.row("seq_ops", "sequential execute, leader", "ops/s", True)
        res.row("seq_p50", "sequential latency p50", "ms", False)
        res.row("seq_p99", "sequential latency p99", "ms", False)
        res.row("nb_ops", "sequential execute, leader", "ops/s", True, PSO_NOBATCH)
        res.row("nb_p50", "sequential latency p50", "ms", False, PSO_NOBATCH)
        res.row("nb_p99", "sequential latency p99", "ms", False, PSO_NOBATCH)
    for window, _ in windows:
        res.row(f"w{window}", f"pipelined W={window:,}, applied on all 3", "commits/s", True)
        if window == 2000:  # the collections rows go beside the plain counter's
            for name in collections:
                key, op, theirs = COLLECTIONS[name]
                label = f"{op} pipelined W=2,000, applied on all 3"
                res.row(key, label, "commits/s", True, theirs)
    for name in collections:  # when the plain W=2,000 row is not run
        key, op, theirs = COLLECTIONS[name]
        res.row(key, f"{op} pipelined W=2,000, applied on all 3", "commits/s", True, theirs)
    if run_many:
        res.row("many", "execute_many of 1,000 (mosaik only)", "commits/s", True)
    durable_total = 600 if smoke else 40_000 if quick else 60_000
    if durable:
        res.row(
            "d_ops", "durable sequential execute (fsync per commit)", "ops/s", True, PSO_JOURNAL
        )
        res.row("d_p50", "durable sequential latency p50", "ms", False, PSO_JOURNAL)
        res.row("d_p99", "durable sequential latency p99", "ms", False, PSO_JOURNAL)
        res.row(
            "d_w2000", "durable pipelined W=2,000 (group commit)", "commits/s", True, PSO_JOURNAL
        )
    if run_reads:
        for where in ("leader", "follower"):
            label = f"strong query, one at a time on the {where}, p50 (mosaik only)"
            res.row(f"q_{where}_p50", label, "ms", False)
        label = "strong queries pipelined W=2,000 on the leader (mosaik only)"
        res.row("q_w2000", label, "queries/s", True)
    for size in sizes:
        label = f"{size} members: sequential latency p50 (mosaik only)"
        res.row(f"n{size}_p50", label, "ms", False)
        res.row(
            f"n{size}_w2000",
            f"{size} members: pipelined W=2,000, applied on all {size} (mosaik only)",
            "commits/s",
            True,
        )
    if kills:
        res.row("failover", "failover: SIGKILL leader -> next commit", "ms", False)
    if overloads:
        res.row("overload", "overload W=90,000 for 5 s: all 3 converge", "s after stop", False)
    if memory_total:
        res.row(
            "rss",
            f"max RSS per node after {memory_total:,} commands (a machine that snapshots)",
            "MB",
            False,
        )
        res.row(
            "rss_log",
            f"max RSS per node after {memory_total:,} commands, whole log kept (mosaik only)",
            "MB",
            False,
        )
        res.row(
            "entry_bytes",
            "resident bytes per retained entry, 1-byte command (mosaik only)",
            "B",
            False,
        )

    started = time.monotonic()
    body: Body
    with tempfile.TemporaryDirectory(prefix="compare-bench-") as tmp:
        logdir = Path(tmp)

        def main_body(c: Cluster) -> dict[str, float]:
            out = c.values
            if run_seq:
                s = sequential(c, seq_seconds, seq_limit)
                prefix = "nb" if c.system == PSO_NOBATCH else "seq"
                out.update({f"{prefix}_{k}": v for k, v in s.items()})
                if c.system == MOSAIK:  # the same figures, set against PySyncObj without batching
                    out.update({f"nb_{k}": v for k, v in s.items()})
            if c.system == PSO_NOBATCH:
                return out
            for window, total in windows:
                cmd = f"pipe {window} {total} 60 30"
                out[f"w{window}"] = applied_everywhere(c, cmd, total, 60)
            if c.system == MOSAIK and run_many:
                cmd = f"many 1000 {many_batches} 60"
                out["many"] = applied_everywhere(c, cmd, 1000 * many_batches, 60)
            return out

        def keys_for(system: str) -> list[str]:
            seq = ["seq_ops", "seq_p50", "seq_p99"] if run_seq else []
            nb = ["nb_ops", "nb_p50", "nb_p99"] if run_seq else []
            if system == PSO_NOBATCH:
                return nb
            keys = seq + [f"w{w}" for w, _ in windows]
            return keys + (["many"] if run_many else []) + nb if system == MOSAIK else keys

        def collection_body(key: str) -> Body:
            def body(c: Cluster) -> dict[str, float]:
                # A fresh cluster: warmed up first, as the plain counter's
                # W=2,000 comes after other workloads of its cluster.
                warm = max(1, w2000_total // 10)
                applied_everywhere(c, f"pipe 2000 {warm} 60 30", warm, 60)
                cmd = f"pipe 2000 {w2000_total} 60 30"
                return {key: applied_everywhere(c, cmd, w2000_total, 60)}

            return body

        for rep in range(reps):
            for system in SYSTEMS:
                if not keys_for(system):
                    continue
                print(f"[{time.monotonic() - started:6.1f} s] rep {rep + 1}: {system}", flush=True)
                run_cluster(system, logdir, main_body, keys_for(system), res)
            for name in collections:
                key, op, theirs = COLLECTIONS[name]
                for system in (MOSAIK, PSO):
                    who = f"{MOSAIK} {op}" if system == MOSAIK else theirs
                    elapsed = time.monotonic() - started
                    print(f"[{elapsed:6.1f} s] rep {rep + 1}: {who}", flush=True)
                    run_cluster(system, logdir, collection_body(key), [key], res, name)

        def reads_body(c: Cluster) -> dict[str, float]:
            leader = c.leader
            out = {}
            for where, node in (("leader", leader), ("follower", c.followers(leader)[0])):
                w = node.ask(f"qseq {seq_seconds} {seq_limit}", seq_seconds + 30)
                if int(w[2]):
                    raise BenchFailure(f"{c.label}: {w[2]} strong queries failed on the {where}")
                out[f"q_{where}_p50"] = float(w[4])
            w = leader.ask(f"qpipe 2000 {reads_total} 60", 90)
            if int(w[2]):
                raise BenchFailure(f"{c.label}: {w[2]} pipelined strong queries failed")
            out["q_w2000"] = int(w[1]) / float(w[3])
            return out

        if run_reads:
            for rep in range(reps):
                elapsed = time.monotonic() - started
                print(f"[{elapsed:6.1f} s] reads {rep + 1}: {MOSAIK}", flush=True)
                keys = ["q_leader_p50", "q_follower_p50", "q_w2000"]
                run_cluster(MOSAIK, logdir, reads_body, keys, res)

        def size_body(c: Cluster) -> dict[str, float]:
            p50 = sequential(c, seq_seconds, seq_limit)["p50"]
            cmd = f"pipe 2000 {w2000_total} 60 30"
            w2000 = applied_everywhere(c, cmd, w2000_total, 60)
            return {f"n{c.size}_p50": p50, f"n{c.size}_w2000": w2000}

        for _ in range(reps):
            for size in sizes:
                print(f"[{time.monotonic() - started:6.1f} s] {size} members: {MOSAIK}", flush=True)
                keys = [f"n{size}_p50", f"n{size}_w2000"]
                run_cluster(MOSAIK, logdir, size_body, keys, res, size=size)

        def durable_body(c: Cluster) -> dict[str, float]:
            out = c.values
            s = sequential(c, seq_seconds, seq_limit)
            out.update({f"d_{k}": v for k, v in s.items()})
            cmd = f"pipe 2000 {durable_total} 60 30"
            out["d_w2000"] = applied_everywhere(c, cmd, durable_total, 60)
            return out

        for rep in range(reps if durable else 0):
            for system in DURABLE_SYSTEMS:
                print(f"[{time.monotonic() - started:6.1f} s] rep {rep + 1}: {system}", flush=True)
                keys = ["d_ops", "d_p50", "d_p99", "d_w2000"]
                run_cluster(system, logdir, durable_body, keys, res)

        for k in range(kills):
            for system in (MOSAIK, PSO):
                print(f"[{time.monotonic() - started:6.1f} s] kill {k + 1}: {system}", flush=True)
                body = lambda c: {"failover": failover(c, 1.0, 4.0) * 1e3}  # noqa: E731
                run_cluster(system, logdir, body, ["failover"], res)

        for k in range(overloads):
            for system in (MOSAIK, PSO):
                print(
                    f"[{time.monotonic() - started:6.1f} s] overload {k + 1}: {system}", flush=True
                )
                body = lambda c: {"overload": overload(c, 90_000, 5.0, 15.0)}  # noqa: E731
                run_cluster(system, logdir, body, ["overload"], res)

        if memory_total:
            for system in (MOSAIK, PSO):
                print(f"[{time.monotonic() - started:6.1f} s] memory: {system}", flush=True)
                body = lambda c: {"rss": memory(c, memory_total)[0]}  # noqa: E731
                run_cluster(system, logdir, body, ["rss"], res, snapshots=True)
            print(f"[{time.monotonic() - started:6.1f} s] memory, whole log: {MOSAIK}", flush=True)
            body = lambda c: dict(zip(WHOLE_LOG, memory(c, memory_total), strict=True))  # noqa: E731
            run_cluster(MOSAIK, logdir, body, list(WHOLE_LOG), res)

    took = time.monotonic() - started
    mode = "smoke" if smoke else "quick" if quick else "full"
    if args.only is not None:
        mode += f" (only {','.join(p for p in PARTS if p in only)})"
    report = render(res, reps, kills, overloads, int(memory_total > 0), mode, took)
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.md").write_text(report)
    chart(res, args.out / "latest.png")
    print(f"wrote {args.out / 'latest.md'} and {args.out / 'latest.png'} in {took:.0f} s")
    # PySyncObj's failures are its results; only ours make the run fail.
    if any(isinstance(v, str) for r in res.rows.values() for v in r.ours):
        raise SystemExit(1)


# -- the report -------------------------------------------------------------


def machine() -> list[str]:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        mem = f", {kb / 1024 / 1024:.1f} GiB RAM"
    cpus = len(os.sched_getaffinity(0))
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("mosaik", "pysyncobj"))
    return [
        f"- CPU: {model}, nproc {cpus}{mem}",
        f"- {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; {versions}",
    ]


def fmt(value: float | str | None, unit: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if unit == "ms" and value < 10:
        return f"{value:.3f}"
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def ratio(row: Row) -> str:
    ours, theirs = median(row.ours), median(row.theirs)
    if not isinstance(ours, float) or not isinstance(theirs, float) or not ours or not theirs:
        return "-"
    r = ours / theirs
    better = (r > 1) == row.higher_is_better
    word = "better" if better else "worse"
    if abs(r - 1) < 0.05:
        word = "same"
    return f"{r:.2f} ({word})"


def against_counter(res: Results) -> list[str]:
    """Each collection row as a share of the plain counter's W=2,000 rate, per system."""
    plain = res.rows.get("w2000")
    present = [(k, op, t) for k, op, t in COLLECTIONS.values() if k in res.rows]
    if plain is None or not present:
        return []
    lines = [
        "",
        "Collections against the plain counter (pipelined W=2,000, applied on all 3, "
        "the medians above; the same command count, each collection in a fresh cluster "
        "after a warm-up of a tenth of it):",
        "",
    ]
    for system, base in ((MOSAIK, median(plain.ours)), (PSO, median(plain.theirs))):
        parts = []
        for key, op, theirs in present:
            row = res.rows[key]
            value = median(row.ours if system == MOSAIK else row.theirs)
            name = op if system == MOSAIK else theirs.removeprefix(f"{PSO} ")
            if isinstance(value, float) and isinstance(base, float) and base:
                parts.append(f"{name} {value / base:.0%} of it ({fmt(value, row.unit)} commits/s)")
            else:
                parts.append(f"{name} - ({fmt(value, row.unit)})")
        lines.append(
            f"- {system}: plain counter {fmt(base, plain.unit)} commits/s; " + "; ".join(parts)
        )
    return lines


def render(
    res: Results, reps: int, kills: int, overloads: int, memory_runs: int, mode: str, took: float
) -> str:
    lines = [
        "# mosaik vs PySyncObj",
        "",
        f"Run: {time.strftime('%Y-%m-%d %H:%M %Z')}, mode {mode}, {took:.0f} s. "
        f"Each figure is the median of {reps} repetition(s) ({kills} leader kill(s), "
        f"{overloads} overload run(s), {memory_runs} memory run), the systems interleaved, "
        "3 node processes each on 127.0.0.1. Ratio = mosaik / other; "
        "FAILED means the counters did not agree with the acknowledged commands "
        "(or the run broke), so no number is given.",
        "",
        *machine(),
        "",
        "| workload | unit | mosaik | other | other system | ratio |",
        "| --- | --- | ---: | ---: | --- | --- |",
    ]
    for row in res.rows.values():
        ours, theirs = median(row.ours), median(row.theirs)
        lines.append(
            f"| {row.label} | {row.unit} | {fmt(ours, row.unit)} | {fmt(theirs, row.unit)} "
            f"| {row.theirs_system if row.theirs else '-'} | {ratio(row)} |"
        )
    lines += against_counter(res)
    lines += ["", "Raw values per repetition:", ""]
    for row in res.rows.values():
        ours = ", ".join(fmt(v, row.unit) for v in row.ours) or "-"
        theirs = ", ".join(fmt(v, row.unit) for v in row.theirs) or "-"
        lines.append(f"- {row.label} ({row.unit}): mosaik [{ours}]; {row.theirs_system} [{theirs}]")
    if res.notes:
        lines += ["", "Notes (rejected commands are not counted as commits):", ""]
        lines += [f"- {note}" for note in res.notes]
    return "\n".join(lines) + "\n"


def chart(res: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [
        (
            "Throughput (higher is better)",
            [
                "seq_ops",
                "nb_ops",
                "w100",
                "w2000",
                "map_w2000",
                "ctr_w2000",
                "w20000",
                "w200000",
                "many",
            ],
        ),
        ("Latency (lower is better)", ["seq_p50", "seq_p99", "nb_p50", "nb_p99", "failover"]),
        ("Overload convergence, memory (lower is better)", ["overload", "rss"]),
    ]
    groups = [(title, keys) for title, keys in groups if any(k in res.rows for k in keys)]
    if not groups:  # only mosaik's own rows: nothing to set side by side
        return
    fig, axes = plt.subplots(1, len(groups), figsize=(6 * len(groups), 5.5), squeeze=False)
    for ax, (title, keys) in zip(axes[0], groups, strict=True):
        present = [k for k in keys if k in res.rows]
        labels, ours, theirs = [], [], []
        for key in present:
            row = res.rows[key]
            o, t = median(row.ours), median(row.theirs)
            other = "vs PySyncObj no batch " if row.theirs_system == PSO_NOBATCH else ""
            if key in {k for k, _, _ in COLLECTIONS.values()}:
                other = f"vs {row.theirs_system} "
            labels.append(f"{row.label}\n{other} ({row.unit})".replace("\n ", "\n"))
            ours.append(o if isinstance(o, float) else 0.0)
            theirs.append(t if isinstance(t, float) else 0.0)
        xs = range(len(present))
        ax.bar([x - 0.2 for x in xs], ours, 0.4, label=MOSAIK, color="tab:blue")
        ax.bar([x + 0.2 for x in xs], theirs, 0.4, label=PSO, color="tab:orange")
        ax.set_xticks(list(xs), labels, rotation=30, ha="right", fontsize=7)
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle("mosaik vs PySyncObj, 3 nodes on 127.0.0.1 (log scale; missing bar = FAILED/n/a)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
