"""A snapshot of one node's view of its group: role, term, commit index, bonds."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..group import Group


@dataclass(frozen=True)
class NodeStatus:
    role: str
    leader: str | None
    term: int
    committed: int
    bonds: int

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
        )

    def shape(self) -> tuple[str, str | None, int]:
        """What a human wants to hear about when it changes."""
        return (self.role, self.leader, self.bonds)

    def line(self) -> str:
        leader = "none" if self.leader is None else self.leader[:12]
        return (
            f"status: role={self.role} leader={leader} term={self.term} "
            f"committed={self.committed} bonds={self.bonds}"
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


__all__ = ["NodeStatus"]
