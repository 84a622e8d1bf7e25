"""A snapshot of one node's view of its group: role, term, commit index,
bonds and machine version."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..group import Group

# A term is a ballot, ``round << 32 | tag``: people are shown the round.
_ROUND_SHIFT = 32


def election_round(term: int) -> int:
    """The election round of ``term`` (0 before the first election)."""
    return term >> _ROUND_SHIFT


@dataclass(frozen=True)
class NodeStatus:
    role: str
    leader: str | None
    term: int
    committed: int
    bonds: int
    machine_version: int

    @property
    def round(self) -> int:
        """The election round of the term: 1, 2, 3, ... (what people read)."""
        return election_round(self.term)

    @staticmethod
    def of(group: Group[Any]) -> NodeStatus:
        leader = group.leader()
        if group.is_leader():
            role = "leader"
        elif leader is not None:
            role = "follower"
        else:
            role = "electing"
        return NodeStatus(
            role=role,
            leader=None if leader is None else str(leader),
            term=group.log_position().term,
            committed=group.committed(),
            bonds=len(group.bonds()),
            machine_version=group.machine_version,
        )

    def shape(self) -> tuple[str, str | None, int, int]:
        """What a human wants to hear about when it changes."""
        return (self.role, self.leader, self.bonds, self.machine_version)

    def line(self) -> str:
        leader = "none" if self.leader is None else self.leader[:12]
        return (
            f"status: role={self.role} leader={leader} round={self.round} "
            f"committed={self.committed} bonds={self.bonds} version={self.machine_version}"
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "round": self.round}


__all__ = ["NodeStatus"]
