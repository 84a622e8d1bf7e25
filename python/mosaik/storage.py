"""Log storage choices for a group."""

from __future__ import annotations


class InMemoryLogStore:
    """Keeps the term, the vote and the log in memory (the default)."""

    def __repr__(self) -> str:
        return "InMemoryLogStore()"


__all__ = ["InMemoryLogStore"]
