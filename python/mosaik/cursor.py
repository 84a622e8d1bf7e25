"""Positions in the log and what an apply call is told about them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Cursor:
    """A log position: ordered by term, then index."""

    term: int
    index: int


@dataclass(frozen=True)
class ApplyContext:
    """What `apply` is told; the same on every node for the same index.

    For ``apply`` both cursors are the position of the command applied; for
    ``apply_batch`` they are the position of the batch's last command.
    """

    committed: Cursor
    log_position: Cursor
    current_term: int


__all__ = ["ApplyContext", "Cursor"]
