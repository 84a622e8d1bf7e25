"""The nemesis checker on small hand-made histories: some must pass, each
anomaly kind must be found."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from .checker import check

_ops = itertools.count(1)


def append(value: int, invoke: float, complete: float | None, outcome: str = "ok", **kw: Any):
    index = kw.pop("index", value + 1 if outcome == "ok" else None)
    return {
        "f": "append",
        "op": next(_ops),
        "member": kw.pop("member", 0),
        "value": value,
        "invoke": invoke,
        "complete": complete,
        "outcome": outcome,
        "index": index,
        **kw,
    }


def read(journal: list[int] | list[list[int]], invoke: float, complete: float, **kw: Any):
    entries = [e if isinstance(e, list) else [e, e + 1] for e in journal]
    return {
        "f": "read",
        "op": next(_ops),
        "member": kw.pop("member", 0),
        "invoke": invoke,
        "complete": complete,
        "outcome": kw.pop("outcome", "ok"),
        "journal": entries,
        "phase": kw.pop("phase", "workload"),
    }


def finals(journal: list[int], at: float = 100.0, members: int = 3) -> list[dict[str, Any]]:
    return [read(journal, at, at + 0.1, member=m, phase="final") for m in range(members)]


def kinds(history: list[dict[str, Any]], members: int | None = 3) -> set[str]:
    result = check(history, members=range(members) if members is not None else None)
    return set(result.counts)


def test_a_valid_concurrent_history_passes() -> None:
    history = [
        append(1, 0.0, 1.0),
        append(2, 0.5, 1.5),
        read([1], 0.8, 1.2),  # concurrent with both appends: may see 1 only
        append(3, 2.0, 3.0, outcome="unknown", index=None),  # may or may not commit
        append(4, 2.0, 2.5, outcome="offline"),
        read([1, 2], 1.6, 1.9, member=1),
        read([1, 2, 3], 3.5, 3.6, member=2),
        append(5, 4.0, None, outcome="unknown", index=None),  # never answered, lost: fine
        *finals([1, 2, 3]),
    ]
    result = check(history, members=range(3))
    assert result.valid, result.report()
    assert (result.ok, result.offline, result.unknown, result.reads) == (2, 1, 2, 6)


def test_indices_need_not_be_consecutive_or_journal_positions() -> None:
    history = [
        append(1, 0.0, 1.0, index=5),
        append(2, 1.1, 2.0, index=9),
        read([[1, 5], [2, 9]], 2.1, 2.2),
    ]
    history += [read([[1, 5], [2, 9]], 10.0, 10.1, member=m, phase="final") for m in range(3)]
    assert kinds(history) == set()


def test_a_duplicate_value_in_a_read() -> None:
    history = [append(1, 0.0, 1.0), read([[1, 2], [1, 3]], 1.1, 1.2)]
    assert "a-duplicate" in kinds(history, None)


def test_a_value_never_appended() -> None:
    history = [append(1, 0.0, 1.0), read([1, 7], 1.1, 1.2)]
    assert kinds(history, None) == {"a-phantom"}


def test_a_value_appended_after_the_read_completed() -> None:
    history = [read([1], 0.0, 1.0), append(1, 2.0, 3.0)]
    assert kinds(history, None) == {"a-future"}


def test_a_indices_going_backwards_in_a_read() -> None:
    history = [
        append(1, 0.0, 1.0, index=None, outcome="unknown"),
        append(2, 0.0, 1.0, index=None, outcome="unknown"),
        read([[1, 5], [2, 4]], 1.1, 1.2),
    ]
    assert kinds(history, None) == {"a-index-order"}


def test_b_reads_that_are_not_prefixes_of_one_journal() -> None:
    history = [
        append(1, 0.0, 1.0, outcome="unknown", index=None),
        append(2, 0.0, 1.0, outcome="unknown", index=None),
        read([1, 2], 1.1, 1.2, member=0),
        read([2], 1.1, 1.2, member=1),  # concurrent, so only the order is wrong
    ]
    assert kinds(history, None) == {"b-divergent-reads"}


def test_c_a_later_read_that_is_shorter() -> None:
    history = [
        append(1, 0.0, None, outcome="unknown", index=None),
        append(2, 0.0, None, outcome="unknown", index=None),
        read([1, 2], 1.0, 2.0, member=0),
        read([1], 2.5, 3.0, member=1),  # started after the longer one ended
    ]
    assert kinds(history, None) == {"c-stale-read"}


def test_c_overlapping_reads_may_differ_in_length() -> None:
    history = [
        append(1, 0.0, None, outcome="unknown", index=None),
        append(2, 0.0, None, outcome="unknown", index=None),
        read([1, 2], 1.0, 2.0, member=0),
        read([1], 1.5, 3.0, member=1),  # overlaps: either order is linearizable
    ]
    assert kinds(history, None) == set()


def test_c_a_read_after_an_acknowledgement_that_lacks_the_value() -> None:
    history = [append(1, 0.0, 1.0), append(2, 0.0, 1.5), read([1], 1.6, 1.7)]
    assert kinds(history, None) == {"c-missing-acked"}


def test_c_a_read_concurrent_with_the_acknowledgement_may_lack_it() -> None:
    history = [append(1, 0.0, 1.0), append(2, 0.0, 1.5), read([1], 1.4, 1.7)]
    assert kinds(history, None) == set()


def test_d_an_offline_value_that_committed() -> None:
    history = [append(1, 0.0, 1.0, outcome="offline"), read([1], 2.0, 2.1)]
    assert kinds(history, None) == {"d-offline-committed"}


def test_d_an_offline_value_only_in_the_final_state() -> None:
    history = [append(1, 0.0, 1.0), append(2, 0.0, 1.0, outcome="offline"), *finals([1, 2])]
    assert kinds(history) == {"d-offline-committed"}


def test_e_an_acknowledged_value_lost_at_the_end() -> None:
    history = [
        append(1, 0.0, 1.0),
        append(2, 1.0, 2.0),
        read([1, 2], 2.1, 2.2),
        *finals([1]),
    ]
    found = kinds(history)
    assert "e-lost-acked" in found
    assert "c-stale-read" in found and "c-missing-acked" in found


def test_e_lost_even_if_no_workload_read_saw_it() -> None:
    history = [append(1, 0.0, 1.0), append(2, 1.0, 2.0), *finals([1])]
    assert "e-lost-acked" in kinds(history)


def test_e_a_member_without_a_final_read() -> None:
    history = [append(1, 0.0, 1.0), *finals([1], members=2)]
    assert kinds(history) == {"e-no-final-read"}


def test_e_a_failed_final_read_does_not_count() -> None:
    history = [append(1, 0.0, 1.0), *finals([1], members=2)]
    history.append(read([], 100.0, 100.1, member=2, phase="final", outcome="offline"))
    result = check(history, members=range(3))
    assert set(result.counts) == {"e-no-final-read"}
    assert result.failed_reads == 1


def test_e_final_journals_that_differ() -> None:
    history = [
        append(1, 0.0, 1.0),
        append(2, 0.0, None, outcome="unknown", index=None),
        read([1], 100.0, 100.1, member=0, phase="final"),
        read([1], 100.0, 100.1, member=1, phase="final"),
        read([1, 2], 100.0, 100.1, member=2, phase="final"),
    ]
    assert kinds(history) == {"e-final-diverge"}


def test_f_acknowledged_index_not_where_the_journal_holds_the_value() -> None:
    history = [append(1, 0.0, 1.0, index=3), read([[1, 4]], 1.1, 1.2)]
    assert kinds(history, None) == {"f-index-mismatch"}


def test_f_two_acknowledgements_of_one_index() -> None:
    history = [
        append(1, 0.0, 1.0, index=3),
        append(2, 0.0, 1.0, index=3),
        read([[1, 3]], 1.1, 1.2),
    ]
    found = kinds(history, None)
    assert "f-index-reused" in found


def test_a_value_appended_twice_is_a_harness_error() -> None:
    with pytest.raises(ValueError, match="appended twice"):
        check([append(1, 0.0, 1.0), append(1, 0.0, 1.0)])


def test_the_report_names_values_ops_and_times() -> None:
    lost = append(2, 1.0, 2.0, member=1)
    result = check([append(1, 0.0, 1.0), lost, *finals([1])], members=range(3))
    text = result.report()
    assert "e-lost-acked" in text
    assert f"2 (op {lost['op']} on member 1, ok at 2.000s, index 3)" in text
