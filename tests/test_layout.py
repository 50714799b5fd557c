"""The package layout of `docs/design.md` holds: imports go one way, and modules stay one idea long.

Read from the sources (every `import` statement, also inside functions and under TYPE_CHECKING),
not from what happens to be loaded, so an import nobody has run yet still counts.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mlc"

LAYERS = [
    {"mlc.errors", "mlc.units", "mlc.universe"},
    {"mlc.dialects"},
    {"mlc.graph"},
    {"mlc.loops"},
    {"mlc.backends"},
    {"mlc.checkpointing", "mlc.frontend"},
    {"mlc.passes"},
    {"mlc.runtime"},
    {"mlc.cli", "mlc.tools", "mlc.testing"},
    {"mlc", "mlc.__main__"},
]
"""Top-level units of `mlc`, lowest first: a module may import its own unit and the units of lower
layers only (the table of `docs/design.md`, "Which package may import which")."""

MAX_FILE_LINES = 500
MAX_CLASS_LINES = 250


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(name: str) -> Iterator[str]:
    """The mlc modules `name` imports (for `from package import name`, the submodule when it is one)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for target in targets:
            while target not in MODULES and "." in target:
                target = target.rpartition(".")[0]
            if target in MODULES and target != name:
                yield target


GRAPH = {name: set(imported_modules(name)) for name in MODULES}


def unit(name: str) -> str:
    """`mlc.loops.nest` -> `mlc.loops`; `mlc.cli` -> `mlc.cli`; the package itself -> `mlc`."""
    return ".".join(name.split(".")[:2])


def layer(name: str) -> int:
    return next(k for k, units in enumerate(LAYERS) if unit(name) in units)


def test_every_unit_has_a_layer():
    assert {unit(name) for name in MODULES} <= set().union(*LAYERS)


def test_imports_go_down_the_layers():
    wrong = sorted(f"{a} imports {b}" for a, targets in GRAPH.items() for b in targets
                   if unit(a) != unit(b) and layer(b) >= layer(a))
    assert wrong == []


def test_no_module_imports_itself_back():
    """No cycle, direct or through a chain: a depth-first search finds no back edge."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(GRAPH[name]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target):], target])
            elif target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert cycles == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_one_idea_long(name: str):
    source = MODULES[name].read_text()
    assert source.count("\n") <= MAX_FILE_LINES
    long_classes = [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(ast.parse(source))
                    if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES]
    assert long_classes == []


def test_the_scanner_sees_imports():
    """The checks above are only as good as the import scan: it must see the known edges."""
    assert "mlc.dialects.ix_schedule" in GRAPH["mlc.dialects.ix"]
    assert "mlc.runtime.trainer" in GRAPH["mlc.runtime.program"]
    assert "mlc.backends.c.runtime" in GRAPH["mlc.checkpointing.chain.dp"]  # imported inside a function
    assert "mlc.graph.signature" in GRAPH["mlc.runtime.arguments"]


def test_old_module_names_are_the_moved_modules():
    """A moved module answers to its old name with itself (not a copy), so patches reach it."""
    import importlib

    import mlc

    for old, new in mlc.MOVED_MODULES.items():
        assert importlib.import_module(old) is importlib.import_module(new), old
