"""Checks a history of appends and strong reads of an append-only journal.

Pure Python; no mosaik. A history is a list of operation records (dicts, as
written to the JSON lines file by `history.History`):

- ``{"f": "append", "op": id, "member": m, "value": v, "invoke": t0,
  "complete": t1 | None, "outcome": "ok" | "offline" | "unknown" | "error",
  "index": i | None}``
- ``{"f": "read", "op": id, "member": m, "invoke": t0, "complete": t1 | None,
  "outcome": "ok" | "offline" | "unknown" | "error", "journal": [[v, i], ...],
  "phase": "workload" | "final"}``

Times are seconds on one monotonic clock (the driver's): ``invoke`` is taken
before the request is written, ``complete`` after the answer was read, so the
real operation lies inside ``[invoke, complete]``. An operation that never
completed (timeout, member killed) has ``complete`` None and outcome
``unknown``: it may or may not have taken effect.

A journal entry is ``[value, log index]``: the member's state machine records
``ctx.log_position.index`` of the entry it applies. ``execute`` returns that
same log index, which is *not* the position in the journal (the log also holds
internal entries, one at the start of every term), so check (f) compares the
acknowledged index with the index the journal recorded for the value; with
indices strictly increasing along the journal, that also fixes the relative
order of acknowledged appends.

Checks (the letters are those of the anomaly kinds):

a. every read is a journal without duplicate values, of values whose append
   was invoked before the read completed, at strictly increasing indices;
b. all reads are prefixes of one journal (one total order);
c. real time: a read invoked after another read completed is at least as
   long; a read invoked after an append was acknowledged contains its value;
d. a value whose append answered OFFLINE is in no read, final ones included;
e. every member has a final read, each contains every acknowledged value,
   and all final journals are equal;
f. an acknowledged append's index is the index the journal holds its value
   at; no two acknowledged appends share an index.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Op = Mapping[str, Any]

# How many anomalies of one kind are described in full; the rest are counted.
DESCRIBED_PER_KIND = 20
# How many values one anomaly lists.
LISTED = 8


@dataclass(frozen=True)
class Anomaly:
    kind: str  # e.g. "b-divergent-reads"; the letter is the check
    detail: str
    ops: tuple[int, ...] = ()

    def __str__(self) -> str:
        ops = f" [ops {', '.join(map(str, self.ops))}]" if self.ops else ""
        return f"{self.kind}: {self.detail}{ops}"


@dataclass
class Result:
    anomalies: list[Anomaly] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)  # anomalies by kind
    ok: int = 0
    offline: int = 0
    unknown: int = 0
    errors: int = 0
    reads: int = 0  # reads with a journal (final ones included)
    failed_reads: int = 0  # reads answered offline, unknown or error

    @property
    def valid(self) -> bool:
        return not self.counts

    def add(self, kind: str, detail: str, ops: Iterable[int] = ()) -> None:
        self.counts[kind] += 1
        if self.counts[kind] <= DESCRIBED_PER_KIND:
            self.anomalies.append(Anomaly(kind, detail, tuple(ops)))

    def summary(self) -> str:
        ops = (
            f"appends ok={self.ok} offline={self.offline} unknown={self.unknown} "
            f"error={self.errors}; reads={self.reads} failed={self.failed_reads}"
        )
        if self.valid:
            return f"{ops}; no anomaly"
        kinds = ", ".join(f"{k}={n}" for k, n in sorted(self.counts.items()))
        return f"{ops}; anomalies: {kinds}"

    def report(self) -> str:
        lines = [self.summary(), *(f"  {a}" for a in self.anomalies)]
        hidden = sum(self.counts.values()) - len(self.anomalies)
        if hidden > 0:
            lines.append(f"  ... and {hidden} more")
        return "\n".join(lines)


def _t(x: float | None) -> str:
    return "never" if x is None else f"{x:.3f}s"


def _values(values: Iterable[Any]) -> str:
    items = list(values)
    shown = ", ".join(map(str, items[:LISTED]))
    return shown + (f", ... ({len(items)} in all)" if len(items) > LISTED else "")


def _journal(op: Op) -> list[tuple[int, int]]:
    return [(int(v), int(i)) for v, i in op["journal"]]


def check(history: Iterable[Op], members: Sequence[int] | None = None) -> Result:
    """Every anomaly of ``history``; ``members`` are those that must have a
    final read (check e); None skips the final checks."""
    ops = list(history)
    result = Result()
    appends: dict[int, Op] = {}
    for op in ops:
        if op["f"] != "append":
            continue
        if op["value"] in appends:
            raise ValueError(f"harness error: value {op['value']} appended twice")
        appends[op["value"]] = op
        outcome = op["outcome"]
        if outcome == "ok":
            result.ok += 1
        elif outcome == "offline":
            result.offline += 1
        elif outcome == "error":
            result.errors += 1
        else:
            result.unknown += 1
    reads = [op for op in ops if op["f"] == "read" and op["outcome"] == "ok"]
    result.failed_reads = sum(1 for op in ops if op["f"] == "read" and op["outcome"] != "ok")
    result.reads = len(reads)
    journals = {op["op"]: _journal(op) for op in reads}
    acked = [op for op in appends.values() if op["outcome"] == "ok"]

    _check_reads(result, reads, journals, appends)
    _check_total_order(result, reads, journals)
    _check_real_time(result, reads, journals, acked)
    _check_offline(result, reads, journals, appends)
    if members is not None:
        _check_final(result, reads, journals, acked, members)
    _check_indices(result, reads, journals, acked)
    return result


def _check_reads(
    result: Result, reads: list[Op], journals: dict[int, list[tuple[int, int]]], appends: dict
) -> None:
    for r in reads:
        journal = journals[r["op"]]
        where = (
            f"read op {r['op']} on member {r['member']} [{_t(r['invoke'])}, {_t(r['complete'])}]"
        )
        dups = [v for v, n in Counter(v for v, _ in journal).items() if n > 1]
        if dups:
            result.add("a-duplicate", f"{where} holds values twice: {_values(dups)}", [r["op"]])
        phantom = [v for v, _ in journal if v not in appends]
        if phantom:
            result.add("a-phantom", f"{where} holds never-appended {_values(phantom)}", [r["op"]])
        future = [
            v
            for v, _ in journal
            if v in appends and r["complete"] is not None and appends[v]["invoke"] > r["complete"]
        ]
        if future:
            result.add(
                "a-future",
                f"{where} holds values appended only after it completed: {_values(future)}",
                [r["op"], *(appends[v]["op"] for v in future[:LISTED])],
            )
        for k in range(1, len(journal)):
            if journal[k][1] <= journal[k - 1][1]:
                result.add(
                    "a-index-order",
                    f"{where}: {journal[k - 1]} then {journal[k]} (index not increasing)",
                    [r["op"]],
                )
                break


def _check_total_order(
    result: Result, reads: list[Op], journals: dict[int, list[tuple[int, int]]]
) -> None:
    if not reads:
        return
    longest = max(reads, key=lambda r: len(journals[r["op"]]))
    ref = journals[longest["op"]]
    for r in reads:
        journal = journals[r["op"]]
        if journal == ref[: len(journal)]:
            continue
        at = next(k for k in range(len(journal)) if journal[k] != ref[k])
        result.add(
            "b-divergent-reads",
            f"read op {r['op']} (member {r['member']}, {_t(r['invoke'])}..{_t(r['complete'])}, "
            f"{len(journal)} entries) and read op {longest['op']} (member {longest['member']}, "
            f"{_t(longest['invoke'])}..{_t(longest['complete'])}, {len(ref)} entries) differ at "
            f"position {at}: [value, index] {list(journal[at])} vs {list(ref[at])}",
            [r["op"], longest["op"]],
        )


def _check_real_time(
    result: Result,
    reads: list[Op],
    journals: dict[int, list[tuple[int, int]]],
    acked: list[Op],
) -> None:
    # Reads against reads: the longest read completed before each invoke.
    done = sorted((r for r in reads if r["complete"] is not None), key=lambda r: r["complete"])
    done_times = [r["complete"] for r in done]
    best: list[Op] = []  # best[k]: the longest of done[: k + 1]
    for r in done:
        if not best or len(journals[r["op"]]) > len(journals[best[-1]["op"]]):
            best.append(r)
        else:
            best.append(best[-1])
    for r in reads:
        k = bisect.bisect_left(done_times, r["invoke"])
        if k == 0:
            continue
        before = best[k - 1]
        n, m = len(journals[r["op"]]), len(journals[before["op"]])
        if n < m:
            result.add(
                "c-stale-read",
                f"read op {r['op']} on member {r['member']} invoked at {_t(r['invoke'])} saw "
                f"{n} entries, but read op {before['op']} on member {before['member']} had seen "
                f"{m} by {_t(before['complete'])}; missing e.g. "
                f"{_values(v for v, _ in journals[before['op']][n:])}",
                [r["op"], before["op"]],
            )
    # Reads against acknowledged appends.
    by_ack = sorted(acked, key=lambda a: a["complete"])
    ack_times = [a["complete"] for a in by_ack]
    for r in reads:
        k = bisect.bisect_left(ack_times, r["invoke"])
        if k == 0:
            continue
        seen = {v for v, _ in journals[r["op"]]}
        missing = [a for a in by_ack[:k] if a["value"] not in seen]
        if missing:
            result.add(
                "c-missing-acked",
                f"read op {r['op']} on member {r['member']} invoked at {_t(r['invoke'])} lacks "
                f"values acknowledged before: "
                + _values(
                    f"{a['value']} (op {a['op']}, ok at {_t(a['complete'])})" for a in missing
                ),
                [r["op"], *(a["op"] for a in missing[:LISTED])],
            )


def _check_offline(
    result: Result, reads: list[Op], journals: dict[int, list[tuple[int, int]]], appends: dict
) -> None:
    offline = {v for v, a in appends.items() if a["outcome"] == "offline"}
    if not offline:
        return
    reported: set[int] = set()
    for r in reads:
        found = [v for v, _ in journals[r["op"]] if v in offline and v not in reported]
        for v in found:
            reported.add(v)
            a = appends[v]
            result.add(
                "d-offline-committed",
                f"value {v} answered OFFLINE (op {a['op']} on member {a['member']}, "
                f"{_t(a['invoke'])}..{_t(a['complete'])}) but read op {r['op']} on member "
                f"{r['member']} ({r.get('phase', 'workload')}) holds it",
                [a["op"], r["op"]],
            )


def _check_final(
    result: Result,
    reads: list[Op],
    journals: dict[int, list[tuple[int, int]]],
    acked: list[Op],
    members: Sequence[int],
) -> None:
    finals: dict[int, Op] = {}
    for r in reads:
        if r.get("phase") == "final":
            prev = finals.get(r["member"])
            if prev is None or (r["complete"] or 0) >= (prev["complete"] or 0):
                finals[r["member"]] = r
    for m in members:
        if m not in finals:
            result.add("e-no-final-read", f"member {m} gave no final strong read")
    for m, r in sorted(finals.items()):
        seen = {v for v, _ in journals[r["op"]]}
        lost = [a for a in acked if a["value"] not in seen]
        if lost:
            result.add(
                "e-lost-acked",
                f"final read op {r['op']} of member {m} lacks acknowledged "
                + _values(
                    f"{a['value']} (op {a['op']} on member {a['member']}, ok at "
                    f"{_t(a['complete'])}, index {a['index']})"
                    for a in sorted(lost, key=lambda a: a["complete"])
                ),
                [r["op"], *(a["op"] for a in lost[:LISTED])],
            )
    if len(finals) > 1:
        (m0, r0), *rest = sorted(finals.items())
        for m, r in rest:
            if journals[r["op"]] != journals[r0["op"]]:
                a, b = journals[r0["op"]], journals[r["op"]]
                at = next(
                    (k for k in range(min(len(a), len(b))) if a[k] != b[k]), min(len(a), len(b))
                )
                result.add(
                    "e-final-diverge",
                    f"final journals of member {m0} ({len(a)} entries) and member {m} "
                    f"({len(b)} entries) differ from position {at}",
                    [r0["op"], r["op"]],
                )


def _check_indices(
    result: Result,
    reads: list[Op],
    journals: dict[int, list[tuple[int, int]]],
    acked: list[Op],
) -> None:
    indices: dict[int, set[int]] = defaultdict(set)
    for r in reads:
        for v, i in journals[r["op"]]:
            indices[v].add(i)
    by_index: dict[int, list[Op]] = defaultdict(list)
    for a in acked:
        if a.get("index") is None:
            continue
        by_index[a["index"]].append(a)
        seen = indices.get(a["value"])
        if seen and seen != {a["index"]}:
            result.add(
                "f-index-mismatch",
                f"value {a['value']} acknowledged at index {a['index']} (op {a['op']} on member "
                f"{a['member']}) but reads hold it at index {sorted(seen)}",
                [a["op"]],
            )
    for index, same in sorted(by_index.items()):
        if len(same) > 1:
            result.add(
                "f-index-reused",
                f"index {index} acknowledged for values {_values(a['value'] for a in same)}",
                [a["op"] for a in same],
            )
