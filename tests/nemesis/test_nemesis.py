"""Fixed-seed nemesis rounds: real member processes in a namespace of their
own, partitions, pauses, kills and restarts under a workload of appends and
strong reads; the history must hold no anomaly.

Skipped (with the reason) where namespaces or nft cannot be used: not root,
no CAP_NET_ADMIN, nft not installed (``make nemesis-deps``). A failing round
leaves its history, member logs and stores in pytest's tmp_path; the message
names the file and the seed to replay (``make nemesis SEED=... ROUNDS=1``).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from .netns import Namespace, Unavailable, member_address, missing_tools
from .run import Settings, run_round

WORKLOAD = 25.0  # seconds of faults and clients per round; ~40 s a round in all
ROUND_LIMIT = 100.0  # the whole round, forming to final reads
MIN_ACKED = 100
MIN_FAULTS = 4


# Sends one datagram from each address to the next and prints which arrived.
PROBE = """
import socket, sys
addrs = sys.argv[1:]
socks = {}
for a in addrs:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a, 0))
    s.settimeout(0.3)
    socks[a] = s
for a in addrs:
    for b in addrs:
        if a == b:
            continue
        try:
            socks[a].sendto(b"x", socks[b].getsockname())
            socks[b].recvfrom(16)
            print(a, b, "ok")
        except OSError:
            print(a, b, "cut")
"""


def probe(ns: Namespace, addrs: list[str]) -> set[tuple[str, str]]:
    """The pairs (from, to) whose datagram did not arrive."""
    out = subprocess.run(
        ns.exec_args([sys.executable, "-c", PROBE, *addrs]),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return {(a, b) for a, b, what in map(str.split, out.stdout.splitlines()) if what == "cut"}


def test_partitions_cut_exactly_the_pairs_inside_the_namespace_only() -> None:
    reason = missing_tools()
    if reason is not None:
        pytest.skip(f"nemesis: {reason}")
    a, b, c = (member_address(i) for i in range(3))
    try:
        ns = Namespace()
        ns.create()
    except Unavailable as exc:
        pytest.skip(f"nemesis: {exc}")
    try:
        assert probe(ns, [a, b, c]) == set()
        ns.cut([(a, b)])  # a non-transitive bridge: a-c and c-b still work
        assert probe(ns, [a, b, c]) == {(a, b), (b, a)}
        assert "127.0.0.2" in ns.rules()
        ns.heal()
        assert probe(ns, [a, b, c]) == set()
    finally:
        ns.delete()
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    assert ns.name not in listed.stdout
    host = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, timeout=10)
    assert "nemesis" not in host.stdout, f"a nemesis table outside the namespace: {host.stdout}"


@pytest.mark.timeout(ROUND_LIMIT + 15)
@pytest.mark.parametrize(
    ("members", "store", "seed"),
    [
        pytest.param(3, "memory", 1, id="3-members-memory"),
        pytest.param(3, "disk", 2, id="3-members-disk"),
        pytest.param(5, "memory", 3, id="5-members-memory"),
    ],
)
async def test_nemesis_round(members: int, store: str, seed: int, tmp_path: Path) -> None:
    reason = missing_tools()
    if reason is not None:
        pytest.skip(f"nemesis: {reason}")
    settings = Settings(
        seed=seed, workdir=tmp_path / "round", members=members, store=store, duration=WORKLOAD
    )
    try:
        result = await asyncio.wait_for(run_round(settings), ROUND_LIMIT)
    except Unavailable as exc:
        pytest.skip(f"nemesis: {exc}")
    check, faults = result.check, sum(result.faults.values())
    where = (
        f"\n{result.line()}\nhistory: {result.history}\nnotes: {result.notes}\n"
        f"replay: make nemesis SEED={seed} ROUNDS=1 MEMBERS={members} STORE={store} "
        f"ROUND={WORKLOAD:.0f}"
    )
    assert check.valid, check.report() + where
    assert not result.errors(), "ERROR answers:\n" + "\n".join(result.errors()[:20]) + where
    assert check.ok >= MIN_ACKED, f"only {check.ok} acknowledged appends (< {MIN_ACKED})" + where
    assert faults >= MIN_FAULTS, f"only {faults} faults injected (< {MIN_FAULTS})" + where
    assert check.reads >= members, f"only {check.reads} reads" + where
