"""Loading a state machine class named as ``module:Class``."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from ..state_machine import check_machine
from .errors import CliError, one_line

DEFAULT_MACHINE = "mosaik.examples.kv:KeyValue"


def load_machine(spec: str) -> Any:
    """A new instance of the class ``spec`` names; a `CliError` if there is none."""
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise CliError(f"invalid --state-machine {spec!r}: expected module:Class")
    # As `python -m` does: the current directory's modules are importable.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import-time failure is the user's module
        raise CliError(f"cannot import state machine module {module_name!r}: {exc}") from exc
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type):
        raise CliError(f"state machine {spec!r}: module {module_name!r} has no class {class_name}")
    try:
        machine = cls()
        check_machine(machine)
    except Exception as exc:
        raise CliError(f"state machine {spec!r} unusable: {one_line(str(exc))}") from exc
    return machine


__all__ = ["DEFAULT_MACHINE", "load_machine"]
