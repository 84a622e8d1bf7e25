"""What one group's machine leaves in its thread's Python state does not
reach the next batch it applies, nor another group's machine: the apply
pool's threads serve every group and each keeps one thread state, so a
batch runs in a fresh `contextvars` context and the thread's
`threading.local` values are dropped after it. A machine that set the
`decimal` precision would otherwise change what another group computes on
some nodes only (whichever thread applied it there)."""

from __future__ import annotations

import decimal
import threading
from typing import Any

import mosaik
from conftest import bounded, networks

LOCAL = threading.local()


class Leaky(mosaik.StateMachine):
    """Records the thread's decimal precision and local value it finds,
    then changes both."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, Any]] = []

    def signature(self) -> str:
        return "leaky_v1"

    def apply(self, command: Any, ctx: mosaik.ApplyContext) -> None:
        self.seen.append((decimal.getcontext().prec, getattr(LOCAL, "value", None)))
        decimal.getcontext().prec = 6
        LOCAL.value = command

    def query(self, query: Any) -> Any:
        return self.seen


async def test_a_batch_finds_none_of_the_thread_state_earlier_batches_left() -> None:
    default = decimal.getcontext().prec
    async with networks(1) as (net,):
        groups = [
            net.groups().with_key(mosaik.GroupKey.generate()).with_state_machine(Leaky()).join()
            for _ in range(2)
        ]
        for group in groups:
            await bounded(group.when().is_leader())
        for i in range(20):  # one command per batch, alternating groups
            await bounded(groups[i % 2].execute(i))
        for group in groups:
            assert group.machine.seen == [(default, None)] * 10
