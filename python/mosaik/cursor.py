"""Positions in the log and what an apply call is told about them.

Both are made once per applied command, so both are native classes, built
by the apply thread without running Python code:

- `Cursor(term, index)`: a log position with ``.term`` and ``.index``,
  ordered by term, then index; hashable.
- `ApplyContext(committed, log_position, current_term)`: for ``apply`` both
  cursors are the position of the command applied; for ``apply_batch`` they
  are the position of the batch's last command.
"""

from __future__ import annotations

from ._native import ApplyContext, Cursor

__all__ = ["ApplyContext", "Cursor"]
