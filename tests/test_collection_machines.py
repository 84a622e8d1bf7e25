"""The collections' state machines on their own, without a network: each
operation's effect and result, snapshots that restore the same state, and
the lock's clock, whose safety is checked as a property over generated
logs of ticks from several (deposed and new) leaders."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mosaik
from mosaik.collections._base import CollectionMachine
from mosaik.collections._cell import CellMachine
from mosaik.collections._counter import CounterMachine
from mosaik.collections._lock import LockMachine
from mosaik.collections._map import MapMachine
from mosaik.collections._once import OnceMachine
from mosaik.collections._priority_queue import PriorityQueueMachine
from mosaik.collections._queue import QueueMachine
from mosaik.collections._set import SetMachine
from mosaik.collections._vec import VecMachine

CONSENSUS = mosaik.ConsensusConfig(election_timeout=0.8, election_timeout_jitter=0.2)
TICK = 0.1  # election_timeout / 8


def machine(kind: type[CollectionMachine]) -> Any:
    return kind("test", False, CONSENSUS)


def context(term: int = 1, index: int = 1) -> mosaik.ApplyContext:
    at = mosaik.Cursor(term, index)
    return mosaik.ApplyContext(at, at, term)


def run(m: Any, *commands: Any, term: int = 1) -> list[Any]:
    """Applies each command through the codec, as the apply thread does, as
    entries appended in ``term``."""
    codec = mosaik.codec.MSGPACK
    return [m.apply(codec.decode(codec.encode(c)), context(term)) for c in commands]


def restored(m: Any) -> Any:
    """A new machine of the same kind restored from ``m``'s snapshot."""
    copy = machine(type(m))
    copy.restore(m.snapshot())
    return copy


def test_map_operations_and_compare_exchange_with_none_as_absent() -> None:
    m = machine(MapMachine)
    results = run(
        m,
        [0, "a", 1],
        [0, "b", [1, 2]],
        [4, "a", 1, 5],  # a: 1 -> 5
        [4, "a", 1, 6],  # fails: a is 5
        [4, "c", None, 7],  # c absent -> 7
        [4, "c", None, 8],  # fails: c present
        [4, "c", 7, None],  # c removed
        [1, "b"],
        [2, ["x", 1, "y", 2]],
    )
    assert results[2:7] == [True, False, True, False, True]
    assert m.data == {"a": 5, "x": 1, "y": 2}
    assert restored(m).data == m.data
    run(m, [3])
    assert m.data == {}


def test_vec_operations_at_both_ends_and_by_index() -> None:
    m = machine(VecMachine)
    results = run(
        m,
        [0, "b"],
        [1, "a"],
        [6, ["c", "d", "e"]],
        [4, 1, "a2"],
        [5, -1],
        [5, 99],  # out of range: nothing
        [2],
        [3],
        [7, 1],
    )
    assert results[6:8] == ["d", "a"]
    assert list(m.items) == ["a2"]
    assert run(m, [8], [2], [3]) == [None, None, None]
    run(m, [6, [1, (2, 3)]])
    assert list(restored(m).items) == [1, (2, 3)]


def test_set_cell_once_and_counter() -> None:
    s = machine(SetMachine)
    run(s, [0, "a"], [2, ["b", "c", "a"]], [1, "b"], [1, "zz"])
    assert s.members == {"a", "c"}
    assert restored(s).members == s.members

    c = machine(CellMachine)
    assert run(c, [2, None, 1], [2, None, 2], [2, 1, 3], [0, "x"], [1]) == [
        True,
        False,
        True,
        None,
        None,
    ]
    assert c.value is None

    o = machine(OnceMachine)
    assert run(o, [0, "first"], [0, "second"]) == [True, False]
    assert restored(o).state == (True, "first")

    n = machine(CounterMachine)
    run(n, 5, -2)  # a bare int adds
    assert n.value == 3
    run(n, [0, (1 << 63) - 1])
    assert run(n, 1, -1) == [False, True]  # would leave 64 bits: unchanged
    assert n.value == (1 << 63) - 2 == restored(n).value


def test_queue_put_bounded_and_get_in_order() -> None:
    q = machine(QueueMachine)
    assert run(q, [0, "a"], [1, "b", 2], [1, "c", 2], [2], [2], [2]) == [
        True,
        True,
        False,
        "a",
        "b",
        None,
    ]
    run(q, [0, {"job": 1}])
    assert list(restored(q).items) == [{"job": 1}]


def test_priority_queue_orders_by_priority_then_insertion_at_both_ends() -> None:
    p = machine(PriorityQueueMachine)
    run(p, [0, "a", 1, 5], [0, "b", 2, 1], [0, "c", 3, 9], [0, "d", 4, 1], [0, "e", 5, 9])
    copy = restored(p)
    for m in (p, copy):
        assert run(m, [1]) == [["b", 2, 1]]  # equal priorities: first inserted first
        assert run(m, [2]) == [["c", 3, 9]]
        assert run(m, [4, "a", 0], [4, "zz", 0]) == [True, False]
        assert run(m, [1], [3, "e"], [1], [1]) == [["a", 1, 0], None, ["d", 4, 1], None]
        assert m.entries == {}


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["ins", "pop_min", "pop_max", "upd", "rm"]),
            st.integers(0, 6),
            st.integers(-3, 3),
        ),
        max_size=60,
    )
)
@settings(max_examples=200, deadline=None)
def test_priority_queue_matches_a_sorted_model(ops: list[tuple[str, int, int]]) -> None:
    """Against a plain dict sorted on every pop, including snapshots taken
    at every step (the heaps are rebuilt from the entries)."""
    p = machine(PriorityQueueMachine)
    model: dict[int, tuple[int, int, int]] = {}  # key -> (priority, seq, value)
    seq = 0
    for op, key, prio in ops:
        if op == "ins":
            run(p, [0, key, key * 10, prio])
            model[key] = (prio, seq, key * 10)
            seq += 1
        elif op == "upd":
            assert run(p, [4, key, prio]) == [key in model]
            if key in model and model[key][0] != prio:  # unchanged: keeps its place
                model[key] = (prio, seq, model[key][2])
                seq += 1
        elif op == "rm":
            run(p, [3, key])
            model.pop(key, None)
        else:
            low = op == "pop_min"
            order = sorted(model.items(), key=lambda kv: (kv[1][0] if low else -kv[1][0], kv[1][1]))
            want = None
            if order:
                k, (pr, _, v) = order[0]
                want = [k, v, pr]
                del model[k]
            assert run(p, [1 if low else 2]) == [want]
        p = restored(p)
        assert p.seq == seq


# -- the lock's clock ---------------------------------------------------------

HOLDER = b"h" * 16


def tick(m: LockMachine, epoch: bytes, reading: float, term: int = 1, appended_in: int = 1) -> None:
    """A tick stamped by the leader of ``term`` and appended in ``appended_in``."""
    run(m, [0, epoch, term, reading], term=appended_in)


def test_a_grant_counts_from_the_second_tick_after_it() -> None:
    m = machine(LockMachine)
    assert m.tick == pytest.approx(TICK)
    tick(m, b"e", 0.0)
    assert run(m, [1, "job", HOLDER, 1.0]) == [1]
    tick(m, b"e", 100.0)  # stamped before the grant arrived, maybe: not counted
    assert m.locks["job"][2] == math.inf
    tick(m, b"e", 100.1)  # starts counting here: expires at clock 100.1 + 1.0
    assert m.locks["job"][2] == pytest.approx(101.1)
    tick(m, b"e", 101.0)
    assert "job" in m.locks
    tick(m, b"e", 101.1)
    assert "job" not in m.locks


def test_a_leader_change_adds_no_time_so_it_lengthens_leases() -> None:
    m = machine(LockMachine)
    tick(m, b"old", 0.0, term=1, appended_in=1)
    run(m, [1, "job", HOLDER, 1.0])
    tick(m, b"old", 0.1, term=1, appended_in=1)
    tick(m, b"old", 0.2, term=1, appended_in=1)  # counting from clock 0.2; expires at 1.2
    tick(m, b"new", 50.0, term=2, appended_in=2)  # a new leader's clock: nothing added
    tick(m, b"old", 0.3, term=1, appended_in=2)  # the deposed leader's tick, forwarded: nothing
    tick(m, b"new", 50.5, term=2, appended_in=2)  # follows a tick that did not count: nothing
    assert m.now == pytest.approx(0.2)
    tick(m, b"new", 51.0, term=2, appended_in=2)
    assert m.now == pytest.approx(0.7) and "job" in m.locks
    tick(m, b"new", 51.6, term=2, appended_in=2)
    assert "job" not in m.locks


def test_a_late_tick_of_a_leader_elected_again_does_not_count_time_twice() -> None:
    """Leader X stamps tick A in term 1, is deposed, and A reaches the log
    through the new leader Y (term 2) after Y's own ticks; X is elected
    again (term 3) and ticks B. B - A overlaps the time Y's ticks counted,
    so it must not count: A was appended in another term than it was
    stamped in."""
    m = machine(LockMachine)
    tick(m, b"y", 10.0, term=2, appended_in=2)
    run(m, [1, "job", HOLDER, 1.0])
    tick(m, b"y", 10.1, term=2, appended_in=2)
    tick(m, b"y", 10.2, term=2, appended_in=2)  # counting: expires at clock 0.2 + 1.0
    tick(m, b"y", 11.0, term=2, appended_in=2)  # clock 1.0
    tick(m, b"x", 9.5, term=1, appended_in=2)  # A, stamped at 9.5 before X was deposed
    tick(m, b"x", 11.1, term=3, appended_in=3)  # B: X leads again; must not add 1.6 s
    assert m.now == pytest.approx(1.0) and "job" in m.locks


def test_renewals_never_shorten_and_only_the_holder_renews_or_releases() -> None:
    m = machine(LockMachine)
    tick(m, b"e", 0.0)
    token = run(m, [1, "job", HOLDER, 5.0])[0]
    assert run(m, [1, "job", b"x" * 16, 5.0]) == [0]  # held: no grant
    assert run(m, [1, "job", HOLDER, 5.0]) == [token]  # the same holder again
    tick(m, b"e", 0.1)
    tick(m, b"e", 0.2)  # expires at 5.2
    assert run(m, [2, "job", HOLDER, token, 1.0]) == [True]
    tick(m, b"e", 0.3)
    tick(m, b"e", 0.4)  # the renewal would end at 1.4: the lease keeps 5.2
    assert m.locks["job"][2] == pytest.approx(5.2)
    assert run(m, [2, "job", HOLDER, token + 1, 9.0], [3, "job", b"x" * 16, token]) == [
        False,
        False,
    ]
    assert run(m, [3, "job", HOLDER, token]) == [True]
    assert run(m, [1, "job", b"x" * 16, 1.0]) == [token + 1]  # tokens only grow
    assert restored(m).dump() == m.dump()


@st.composite
def ticker_logs(draw: st.DrawFn) -> list[tuple[str, float, Any]]:
    """A log as a sequence of leaders could write it, with the real time
    at which each entry is applied. Elections pick a leader for each new
    term; a node that led once may go on stamping ticks with its last term
    without knowing it was deposed. A ticker stamps a tick, waits until it
    applied, then stamps the next (possibly after a pause that starts a new
    run). A tick is appended in its own term only while its stamper still
    leads that term; otherwise it reaches the log through the current
    leader, in the current term. Grants and renewals arrive in between.
    Entries apply in log order at non-decreasing times; a tick is stamped
    no later than it applies."""
    nodes = draw(st.integers(1, 3))
    epochs = [bytes([i]) * 8 for i in range(nodes)]
    led: list[int | None] = [None] * nodes  # the last term each node led
    stamped: list[tuple[float, int] | None] = [None] * nodes  # a tick in flight
    term, leader = 0, None
    log: list[tuple[str, float, Any]] = []
    now = 0.0
    for _ in range(draw(st.integers(1, 100))):
        now += draw(st.floats(0.0, 0.5))
        what = draw(
            st.sampled_from(["elect", "stamp", "apply", "apply", "grant", "renew", "pause"])
        )
        i = draw(st.integers(0, nodes - 1))
        if what == "elect":
            term, leader = term + 1, i
            led[i] = term
        elif what == "stamp" and stamped[i] is None and led[i] is not None:
            stamped[i] = (now, led[i])
        elif what == "apply" and stamped[i] is not None:
            at, own = stamped[i]
            appended_in = own if (leader == i and own == term) else term
            log.append(("tick", now, (epochs[i], at, own, appended_in)))
            stamped[i] = None
        elif what == "pause":
            epochs[i] = bytes([draw(st.integers(0, 255))]) + epochs[i][1:]  # a new run
        elif what in ("grant", "renew"):
            log.append((what, now, draw(st.floats(0.1, 3.0))))
    return log


@given(ticker_logs())
@settings(max_examples=1000, deadline=None)
def test_no_lease_ends_before_ttl_of_real_time_after_its_grant_or_renewal(
    log: list[tuple[str, float, Any]],
) -> None:
    """Safety of the clock: whatever the leaders' ticks do, a lease is
    removed only at least ``ttl`` of real time after the last grant or
    renewal that arrived for it, so its holder's own deadline is sound."""
    m = machine(LockMachine)
    token = 0
    owed = 0.0  # the real time before which the current lease must hold
    for what, at, arg in log:
        if what == "tick":
            held = "job" in m.locks
            epoch, reading, term, appended_in = arg
            tick(m, epoch, reading, term=term, appended_in=appended_in)
            if held and "job" not in m.locks:
                assert at >= owed, f"lease expired at {at}, owed until {owed}"
        elif what == "grant" and "job" not in m.locks:
            token = run(m, [1, "job", HOLDER, arg])[0]
            owed = at + arg
        elif what == "renew" and "job" in m.locks:
            assert run(m, [2, "job", HOLDER, token, arg]) == [True]
            owed = max(owed, at + arg)
