"""Every public name of the library API has a docstring.

The names are the runtime ones: each module's ``__all__`` and, for each
class, the public members it and its mosaik bases define. The docstrings
are read as the documentation site reads them (``make docs``: griffe, from
the source and from ``mosaik/_native.pyi``), so a native class counts as
documented only if its stub says what it is: the Rust doc comments never
reach the site. Attribute docstrings (a string right after an assignment or
an annotation) count, as they do on the site.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
from pathlib import Path
from typing import Any

import griffe
import pytest

PYTHON = Path(__file__).resolve().parents[1] / "python"

# The importable library API (the command line, mosaik.cli, is not part of it).
MODULES = (
    "mosaik",
    "mosaik.blocking",
    "mosaik.codec",
    "mosaik.collections",
    "mosaik.consensus",
    "mosaik.cursor",
    "mosaik.exceptions",
    "mosaik.group",
    "mosaik.groups",
    "mosaik.keys",
    "mosaik.metrics",
    "mosaik.network",
    "mosaik.state_machine",
    "mosaik.storage",
    "mosaik.when",
    "mosaik._native",
)


@pytest.fixture(scope="module")
def package() -> griffe.Module:
    loader = griffe.GriffeLoader(search_paths=[str(PYTHON)], allow_inspection=False)
    module = loader.load("mosaik")
    loader.resolve_aliases(implicit=False, external=False)
    assert isinstance(module, griffe.Module)
    return module


def _target(obj: griffe.Object | griffe.Alias) -> griffe.Object | griffe.Alias:
    """What an alias (a re-export) stands for; the object itself otherwise."""
    while isinstance(obj, griffe.Alias):
        try:
            obj = obj.final_target
        except griffe.AliasResolutionError:
            return obj
    return obj


def _documented(obj: griffe.Object | griffe.Alias) -> bool:
    docstring = _target(obj).docstring
    return docstring is not None and bool(docstring.value.strip())


def _own_members(cls: type) -> list[str]:
    """The public names ``cls`` has from itself or a mosaik base (not from
    object, Exception, Enum, tuple, ...)."""
    names = []
    for name in dir(cls):
        if name.startswith("_"):
            continue
        owner = next((c for c in cls.__mro__ if name in vars(c)), None)
        if owner is not None and owner.__module__.split(".")[0] == "mosaik":
            names.append(name)
    return names


def _static_members(cls: griffe.Object | griffe.Alias) -> dict[str, Any]:
    target = _target(cls)
    members: dict[str, Any] = {}
    with contextlib.suppress(griffe.AliasResolutionError):
        members.update(target.inherited_members)
    members.update(target.members)
    return {name: m for name, m in members.items() if not name.startswith("_")}


def _missing(package: griffe.Module, module_name: str) -> list[str]:
    runtime = importlib.import_module(module_name)
    static = package if module_name == "mosaik" else package[module_name.removeprefix("mosaik.")]
    missing = []
    if not _documented(static):
        missing.append(f"{module_name} (module)")
    for name in runtime.__all__:
        value = getattr(runtime, name)
        where = f"{module_name}.{name}"
        if name not in static.members:
            missing.append(f"{where} (not found in the source or the stubs)")
            continue
        obj = static.members[name]
        if not _documented(obj):
            missing.append(where)
        # Other names of a class (``GroupId = Digest``) document the name;
        # the members are the class's, checked under its own name.
        if not inspect.isclass(value) or not _target(obj).is_class:
            continue
        members = _static_members(obj)
        for member in sorted({*_own_members(value), *members}):
            if member not in members:
                missing.append(f"{where}.{member} (not found in the source or the stubs)")
            elif not _documented(members[member]):
                missing.append(f"{where}.{member}")
    return missing


def test_every_public_name_has_a_docstring(package: griffe.Module) -> None:
    missing = sorted({name for module in MODULES for name in _missing(package, module)})
    assert not missing, "public names without a docstring:\n  " + "\n  ".join(missing)


def test_the_walk_sees_the_api(package: griffe.Module) -> None:
    """The walk above finds what it must check (so it cannot pass by
    looking at nothing): classes, their inherited and native members, and
    attribute docstrings."""
    assert "execute" in _static_members(package["Group"])
    assert "writer" in _static_members(package["collections.Map"])
    assert "derive" in _static_members(package["Digest"])
    assert _documented(package["collections.Map.writer"])
    assert "writer" in _own_members(importlib.import_module("mosaik.collections").Map)
    assert "args" not in _own_members(importlib.import_module("mosaik").CommandOffline)
