"""Nemesis soak: rounds with new seeds until the duration is used up.

    python -m tests.nemesis [--seed S] [--duration SECONDS] [--members 3[,5]]
                            [--store memory|disk|both] [--round SECONDS] [--rounds N]
    python -m tests.nemesis --check path/to/history.jsonl

Each round is a fresh cluster in a fresh namespace. Per round it prints the
seed, the faults injected by kind, the operations checked and the anomalies;
a failed round keeps its directory (history, member logs, stores) and prints
a replay line. Exits 1 if any round found an anomaly, got an ERROR answer,
did no work (fewer than MIN_ACKED acknowledged appends, or no fault) or could
not finish (a harness error, with its traceback); 2 if namespaces or nft
cannot be used here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from . import checker
from .history import load
from .netns import Unavailable, missing_tools
from .run import FAULTS, Settings, run_round

MIN_ROUND = 10.0  # a round's workload is never shorter than this
OVERHEAD = 20.0  # forming, draining, converging and the final reads of a round
MIN_ACKED = 50  # a round with fewer acknowledged appends did no real work: a failure


def recheck(path: Path) -> int:
    records = list(load(path))
    meta = next((r for r in records if r["kind"] == "meta"), {})
    ops = [r for r in records if r["kind"] == "op"]
    members = meta.get("members")
    result = checker.check(ops, members=range(members) if members else None)
    print(result.report())
    return 0 if result.valid else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.nemesis", description=__doc__)
    parser.add_argument("--seed", type=int, help="seed of the first round (then +1, +2, ...)")
    parser.add_argument("--duration", type=float, default=1800.0, help="seconds in all")
    parser.add_argument("--members", default="3", help="cluster sizes, alternated: 3 or 3,5")
    parser.add_argument("--store", choices=("memory", "disk", "both"), default="both")
    parser.add_argument("--round", type=float, default=40.0, help="workload seconds per round")
    parser.add_argument("--rounds", type=int, default=1_000_000, help="at most this many rounds")
    parser.add_argument("--faults", default=",".join(FAULTS), help="fault kinds to draw from")
    parser.add_argument("--workdir", type=Path, help="where rounds keep their files")
    parser.add_argument("--keep", action="store_true", help="keep passing rounds' files too")
    parser.add_argument("--check", type=Path, metavar="HISTORY", help="only re-check a history")
    parser.add_argument(
        "--unsafe-min-quorum",
        type=int,
        default=0,
        metavar="N",
        help="harness self-check: a quorum floor below a majority (anomalies expected)",
    )
    parser.add_argument(
        "--unsafe-weak-reads",
        action="store_true",
        help="harness self-check: weak reads instead of strong ones (anomalies expected)",
    )
    args = parser.parse_args(argv)
    if args.check is not None:
        return recheck(args.check)

    reason = missing_tools()
    if reason is not None:
        print(f"nemesis: cannot run: {reason}")
        return 2
    sizes = [int(x) for x in args.members.split(",") if x.strip()]
    if not sizes or any(not 3 <= n <= 9 for n in sizes):
        parser.error("--members takes sizes from 3 to 9")
    faults = tuple(f for f in args.faults.split(",") if f)
    if unknown := set(faults) - set(FAULTS):
        parser.error(f"unknown faults {sorted(unknown)}; known: {','.join(FAULTS)}")
    stores = ["memory", "disk"] if args.store == "both" else [args.store]
    base = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    root = args.workdir or Path(tempfile.mkdtemp(prefix="mosaik-nemesis-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"nemesis: {args.duration:.0f}s, members {sizes}, stores {stores}, files in {root}")

    start = time.monotonic()
    failures: list[str] = []
    rounds = 0
    for n in range(args.rounds):
        left = args.duration - (time.monotonic() - start)
        if left < MIN_ROUND + OVERHEAD and n > 0:
            break
        seed = base + n
        members = sizes[n % len(sizes)]
        store = stores[(n // len(sizes)) % len(stores)]
        workdir = root / f"round-{n}-seed-{seed}"
        settings = Settings(
            seed=seed,
            workdir=workdir,
            members=members,
            store=store,
            duration=max(MIN_ROUND, min(args.round, left - OVERHEAD)),
            faults=faults,
            min_quorum=args.unsafe_min_quorum,
            weak_reads=args.unsafe_weak_reads,
        )
        replay = (
            f"make nemesis SEED={seed} ROUNDS=1 MEMBERS={members} STORE={store} "
            f"ROUND={settings.duration:.0f}"
        )
        if args.unsafe_min_quorum or args.unsafe_weak_reads or faults != FAULTS:
            replay = (
                f"python -m tests.nemesis --seed {seed} --rounds 1 --members {members} "
                f"--store {store} --round {settings.duration:.0f} --faults {','.join(faults)}"
                + (f" --unsafe-min-quorum {args.unsafe_min_quorum}" * bool(args.unsafe_min_quorum))
                + (" --unsafe-weak-reads" * args.unsafe_weak_reads)
            )
        rounds += 1
        try:
            result = asyncio.run(run_round(settings))
        except Unavailable as exc:
            print(f"nemesis: cannot run: {exc}")
            return 2
        except KeyboardInterrupt:
            print(f"round {n}: interrupted; files in {workdir}")
            return 130
        except Exception:
            print(f"round {n}: seed={seed} members={members} store={store}: harness error")
            traceback.print_exc(file=sys.stdout)
            print(f"  files: {workdir}\n  replay: {replay}")
            failures.append(f"{replay}  # harness error")
            continue
        print(f"round {n}: {result.line()}", flush=True)
        for note in result.notes:
            print(f"  note: {note}")
        problems = []
        if not result.check.valid:
            problems.append("anomalies")
            for anomaly in result.check.report().splitlines()[1:]:
                print(f"  {anomaly}")
        if errors := result.errors():
            problems.append("ERROR answers")
            print(f"  {len(errors)} ERROR answers (a bug of the member or the library):")
            for error in errors[:10]:
                print(f"    {error}")
        if result.check.ok < MIN_ACKED or not result.faults:
            problems.append("did no work")
            print(
                f"  round did no work: {result.check.ok} acknowledged appends "
                f"(< {MIN_ACKED}) or no fault injected"
            )
        if not problems:
            if not args.keep:
                shutil.rmtree(workdir, ignore_errors=True)
            continue
        print(f"  history: {result.history}\n  replay: {replay}", flush=True)
        failures.append(f"{replay}  # {', '.join(problems)}")
    print(f"nemesis: {rounds} rounds in {time.monotonic() - start:.0f}s, {len(failures)} failed")
    for line in failures:
        print(f"  replay: {line}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
