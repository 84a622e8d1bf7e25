"""The history of one nemesis run: a JSON lines file, one record a line.

Records have a ``kind``: ``"op"`` (an append or a read, in the form
`checker` takes, written when it completed or was given up), ``"fault"``
(a nemesis fault with its start and end), ``"late"`` (an answer that came
after the driver gave up on it; not used by the checker), ``"note"`` and
``"meta"`` (settings of the run). The file is line-buffered, so a run that
dies leaves what it had.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


class History:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.ops: list[dict[str, Any]] = []
        self.faults: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self._file: IO[str] | None = open(path, "w", buffering=1)  # noqa: SIM115

    def _write(self, record: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(record, separators=(",", ":")) + "\n")

    def meta(self, **settings: Any) -> None:
        self._write({"kind": "meta", **settings})

    def op(self, record: dict[str, Any]) -> None:
        self.ops.append(record)
        self._write({"kind": "op", **record})

    def fault(self, record: dict[str, Any]) -> None:
        self.faults.append(record)
        self._write({"kind": "fault", **record})

    def late(self, member: int, words: list[str], at: float) -> None:
        self._write({"kind": "late", "member": member, "answer": " ".join(words)[:200], "at": at})

    def note(self, text: str, at: float, quiet: bool = False) -> None:
        """Something worth knowing about the run; ``notes`` (printed with the
        round's result) leave out the quiet ones."""
        if not quiet:
            self.notes.append(text)
        self._write({"kind": "note", "text": text, "at": at})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def load(path: Path) -> Iterator[dict[str, Any]]:
    """Every record of a history file."""
    with open(path) as f:
        for line in f:
            if line.strip():
                yield json.loads(line)
