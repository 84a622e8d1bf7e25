"""One PySyncObj node of the comparison benchmark, driven over stdin/stdout.

Same line protocol as ``mosaik_node.py``. PySyncObj runs its Raft on its own
tick thread; this main thread reads stdin and plays the client. Note that
PySyncObj pickles commands and log entries internally (its design, not ours).

``--workload``: ``counter`` (default) a `SyncObj` subclass with a
``@replicated add``; ``map`` the battery `ReplDict`, ``set(f"k{i}", i)``
with distinct keys; ``ctr`` the battery `ReplCounter`, ``add(1)``. The
batteries are consumers of a plain `SyncObj`. The value reported is the
number of commands applied (the keys of the dict).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, SyncObjException, replicated
from pysyncobj.batteries import ReplCounter, ReplDict
from report import CALL_LIMIT, say, seq_line

REASONS = {v: k for k, v in vars(FAIL_REASON).items() if k.isupper()}
WORKLOADS = ("counter", "map", "ctr")


def config(batch: bool, journal: str | None) -> SyncObjConf:
    # Heartbeats (append entries) every 50 ms, election timeouts drawn from
    # [0.4 s, 0.7 s), as for the mosaik nodes.
    return SyncObjConf(
        appendEntriesUseBatch=batch,
        appendEntriesPeriod=0.05,
        raftMinTimeout=0.4,
        raftMaxTimeout=0.7,
        connectionTimeout=1.0,
        connectionRetryTime=0.2,
        commandsWaitLeader=True,
        dynamicMembershipChange=False,
        journalFile=journal,
    )


class Counter(SyncObj):  # type: ignore[misc]
    def __init__(self, self_addr: str, partners: list[str], conf: SyncObjConf) -> None:
        self.value = 0
        super().__init__(self_addr, partners, conf)

    @replicated  # type: ignore[untyped-decorator]
    def add(self, n: int) -> int:
        self.value += n
        return self.value


class Target:
    """The `SyncObj`, its applied count and its one write: ``write(i, **kw)``
    is command number ``i`` with PySyncObj's ``sync``/``timeout``/``callback``."""

    def __init__(self, workload: str, self_addr: str, partners: list[str], conf: SyncObjConf):
        self.obj: SyncObj
        self.value: Callable[[], int]
        self.write: Callable[..., Any]
        if workload == "map":
            d = ReplDict()
            self.obj = SyncObj(self_addr, partners, conf, consumers=[d])
            self.value, self.write = d.__len__, lambda i, **kw: d.set(f"k{i}", i, **kw)
        elif workload == "ctr":
            c = ReplCounter()
            self.obj = SyncObj(self_addr, partners, conf, consumers=[c])
            self.value, self.write = c.get, lambda i, **kw: c.add(1, **kw)
        else:
            counter = Counter(self_addr, partners, conf)
            self.obj = counter
            self.value, self.write = lambda: counter.value, lambda i, **kw: counter.add(1, **kw)


def sequential(target: Target, seconds: float, limit: int) -> str:
    samples: list[float] = []
    failed = 0
    write = target.write
    base = target.value()
    start = time.monotonic()
    end = start + seconds
    while time.monotonic() < end and len(samples) + failed < limit:
        t0 = time.perf_counter()
        try:
            write(base + len(samples) + failed, sync=True, timeout=CALL_LIMIT)
        except SyncObjException:
            failed += 1
            continue
        samples.append(time.perf_counter() - t0)
    return seq_line(samples, failed, time.monotonic() - start)


def pipelined(target: Target, window: int, total: int, seconds: float, drain: float) -> str:
    """At most ``window`` commands in flight; one is freed when its callback runs."""
    slots = threading.Semaphore(window)
    issued = 0
    acked = [0]
    failed = [0]
    reasons: Tally[str] = Tally()
    last = [time.monotonic()]

    def done(result: Any, error: int) -> None:  # runs on PySyncObj's tick thread
        if error == FAIL_REASON.SUCCESS:
            acked[0] += 1
            last[0] = time.monotonic()
        else:
            failed[0] += 1
            reasons[REASONS.get(error, str(error))] += 1
        slots.release()

    write = target.write
    # Every command before this one was applied here: new keys go on from it.
    base = target.value()
    start = time.monotonic()
    stop = start + seconds
    while issued < total:
        remaining = stop - time.monotonic()
        if remaining <= 0 or not slots.acquire(timeout=remaining):
            break
        write(base + issued, callback=done)
        issued += 1
    end = stop + drain
    while acked[0] + failed[0] < issued and time.monotonic() < end:
        time.sleep(0.001)
    lost = issued - acked[0] - failed[0]
    why = ",".join(f"{k}:{v}" for k, v in reasons.items()) or "-"
    return f"PIPE {acked[0]} {failed[0]} {lost} {start:.6f} {last[0]:.6f} {why}"


def wait_value(target: Target, want: int, timeout: float, idle: float) -> str:
    """As in mosaik_node.py: until ``want`` or no change for ``idle`` seconds."""
    now = changed = time.monotonic()
    end = now + timeout
    read = target.value
    value = read()
    while value < want and now < end and now - changed < idle:
        time.sleep(0.001)
        now = time.monotonic()
        if read() != value:
            value, changed = read(), now
    return f"VALUE {value} {changed:.6f}"


def probe(target: Target, period: float, seconds: float) -> str:
    pairs: list[tuple[float, float]] = []
    failed = [0]
    in_flight = [0]

    def make_done(sent: float) -> Any:
        def done(result: Any, error: int) -> None:
            in_flight[0] -= 1
            if error == FAIL_REASON.SUCCESS:
                pairs.append((sent, time.monotonic()))
            else:
                failed[0] += 1

        return done

    sent = 0
    base = target.value()  # the counters only (failover runs on them)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if in_flight[0] < 200:
            in_flight[0] += 1
            target.write(base + sent, callback=make_done(time.monotonic()))
            sent += 1
        time.sleep(period)
    settle = time.monotonic() + 3.0
    while in_flight[0] > 0 and time.monotonic() < settle:
        time.sleep(0.005)
    body = ",".join(f"{s:.6f}:{a:.6f}" for s, a in list(pairs))
    return f"PROBE {len(pairs)} {failed[0]} {body or '-'}"


def answer(target: Target, words: list[str]) -> str:
    verb, args = words[0], words[1:]
    obj = target.obj
    if verb == "status":
        known = int(obj._getLeader() is not None and obj.isReady())
        return f"STATUS {int(obj._isLeader())} {known} {target.value()} 2"
    if verb == "seq":
        return sequential(target, float(args[0]), int(args[1]))
    if verb == "pipe":
        return pipelined(target, int(args[0]), int(args[1]), float(args[2]), float(args[3]))
    if verb == "wait":
        return wait_value(target, int(args[0]), float(args[1]), float(args[2]))
    if verb == "probe":
        return probe(target, float(args[0]), float(args[1]))
    return f"ERROR unknown command {' '.join(words)!r}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--self", required=True, help="127.0.0.1:port of this node")
    parser.add_argument("--partner", action="append", default=[])
    parser.add_argument("--no-batch", action="store_true", help="appendEntriesUseBatch=False")
    parser.add_argument("--journal", help="journalFile: PySyncObj's on-disk log (mmap, no fsync)")
    parser.add_argument("--workload", choices=WORKLOADS, default="counter")
    args = parser.parse_args()
    conf = config(not args.no_batch, args.journal)
    target = Target(args.workload, args.self, args.partner, conf)
    say(f"ADDR {args.self}")
    try:
        for line in sys.stdin:
            words = line.split()
            if words and words[0] == "quit":
                break
            if words:
                say(answer(target, words))
    finally:
        target.obj.destroy()


if __name__ == "__main__":
    main()
