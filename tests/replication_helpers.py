"""Fast consensus timings, a counter machine and group fixtures shared by the
replication tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from timings import FAST

import mosaik
from conftest import eventually, networks


def fast(**overrides: Any) -> mosaik.ConsensusConfig:
    return mosaik.ConsensusConfig(**{**FAST, **overrides})


class Counter(mosaik.StateMachine):
    """Adds ``command["add"]``; queries return the total."""

    def __init__(self) -> None:
        self.value = 0
        self.applied: list[int] = []

    def signature(self) -> str:
        return "counter_v1"

    def apply(self, command: Any, ctx: mosaik.ApplyContext) -> None:
        self.value += command["add"]
        self.applied.append(ctx.log_position.index)

    def query(self, query: Any) -> Any:
        if query == "boom":
            raise RuntimeError("query handler failed")
        return self.value


@asynccontextmanager
async def counter_group(
    count: int,
    key: mosaik.GroupKey | None = None,
    consensus: mosaik.ConsensusConfig | None = None,
    machine: type[Counter] = Counter,
) -> AsyncIterator[tuple[list[mosaik.Network], list[mosaik.Group[Counter]]]]:
    """``count`` bonded members of one counter group with a leader elected."""
    key = key or mosaik.GroupKey.generate()
    async with networks(count, chain=True) as nets:
        groups = [
            n.groups()
            .with_key(key)
            .with_state_machine(machine())
            .with_consensus_config(consensus or fast())
            .join()
            for n in nets
        ]
        await eventually(lambda: all(len(g.bonds()) == count - 1 for g in groups), 5.0, "mesh")
        await eventually(
            lambda: len({g.leader() for g in groups}) == 1 and groups[0].leader() is not None,
            5.0,
            "one leader",
        )
        yield nets, groups


def leader_of(groups: list[mosaik.Group[Counter]]) -> mosaik.Group[Counter]:
    return next(g for g in groups if g.is_leader())


def followers_of(groups: list[mosaik.Group[Counter]]) -> list[mosaik.Group[Counter]]:
    return [g for g in groups if not g.is_leader()]
