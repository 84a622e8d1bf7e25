"""The package's modules import each other without a circle, type-checking
imports included: each one can be read knowing only what it imports."""

from __future__ import annotations

import ast
from pathlib import Path

import mosaik

PACKAGE = Path(mosaik.__file__).parent


def module_names() -> dict[str, Path]:
    """Every Python module of the package by dotted name."""
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imports_of(name: str, path: Path, modules: set[str]) -> set[str]:
    """The package's modules that ``name`` imports. ``from . import x``
    imports the module ``x`` when there is one, else the package itself."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, node.module] if node.module else parts)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                native = (PACKAGE.parent / (submodule.replace(".", "/") + ".pyi")).exists()
                found.add(submodule if submodule in modules or native else base)
    return (found & modules) - {name}


def test_no_module_of_the_package_imports_itself_back() -> None:
    modules = module_names()
    graph = {name: imports_of(name, path, set(modules)) for name, path in modules.items()}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import circle: " + " -> ".join([*path[path.index(name) :], name]))
        if name in done:
            return
        for imported in sorted(graph[name]):
            visit(imported, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
    assert "mosaik.network" in graph["mosaik"] and "mosaik.group" in graph["mosaik.network"]
