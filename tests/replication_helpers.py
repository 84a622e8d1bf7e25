"""Fast consensus timings and group fixtures shared by the replication tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from machines import Counter
from timings import FAST

import mosaik
from conftest import eventually, networks


def fast(**overrides: Any) -> mosaik.ConsensusConfig:
    return mosaik.ConsensusConfig(**{**FAST, **overrides})


@asynccontextmanager
async def counter_group(
    count: int,
    key: mosaik.GroupKey | None = None,
    consensus: mosaik.ConsensusConfig | None = None,
    machine: type[Counter] = Counter,
) -> AsyncIterator[tuple[list[mosaik.Network], list[mosaik.Group[Counter]]]]:
    """``count`` bonded members of one counter group with a leader elected;
    each machine records the indices it applied."""
    key = key or mosaik.GroupKey.generate()
    async with networks(count, chain=True) as nets:
        groups = [
            n.groups()
            .with_key(key)
            .with_state_machine(machine(record=True))
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
