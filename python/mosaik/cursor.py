"""Positions in the log and what an apply call is told about them.

Both are made once per applied command, so they are kept cheap: a slotted
class and a named tuple.
"""

from __future__ import annotations

from typing import NamedTuple


class Cursor:
    """A log position (`term`, `index`): ordered by term, then index."""

    __slots__ = ("index", "term")

    def __init__(self, term: int, index: int) -> None:
        self.term = term
        self.index = index

    def _key(self) -> tuple[int, int]:
        return (self.term, self.index)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cursor) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __lt__(self, other: Cursor) -> bool:
        return self._key() < other._key()

    def __le__(self, other: Cursor) -> bool:
        return self._key() <= other._key()

    def __gt__(self, other: Cursor) -> bool:
        return self._key() > other._key()

    def __ge__(self, other: Cursor) -> bool:
        return self._key() >= other._key()

    def __repr__(self) -> str:
        return f"Cursor(term={self.term}, index={self.index})"


class ApplyContext(NamedTuple):
    """What `apply` is told; the same on every node for the same index.

    For ``apply`` both cursors are the position of the command applied; for
    ``apply_batch`` they are the position of the batch's last command.
    """

    committed: Cursor
    log_position: Cursor
    current_term: int


__all__ = ["ApplyContext", "Cursor"]
