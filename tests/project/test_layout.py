"""The layout a newcomer reads: imports flow one way, files stay small, no shims.

Imports are read from the source (every ``import``, at module level, in functions and
under ``TYPE_CHECKING``); an import of ``pkg.mod`` is an edge to that module, an import
of a name from a package is an edge to the package (its ``__init__``).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "exporter"
MAX_LINES = 400
SIZED = ("exporter", "bench", "prometheus", "mixin")
# The stages, from the entry points down: a module may import its own stage and those
# below it, never one above. The shared model (snapshot, reasons, logs) is below all.
LAYERS = (
    {"exporter.cli", "exporter.__main__", "exporter.app", "exporter.demo", "exporter.flags"},
    {"exporter.status", "exporter.web", "exporter.simulator"},
    {"exporter.collector"},
    {"exporter.exposition", "exporter.pinpointe"},
    {"exporter.config"},
    {"exporter.snapshot", "exporter.reasons", "exporter.logs", "exporter"},
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in known else node.module)
    return {name for name in found if name in known}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


def test_no_import_cycle_not_even_under_type_checking() -> None:
    edges = graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert cycles == []


def layer_of(module: str) -> int:
    for depth, layer in enumerate(LAYERS):
        if any(module == top or module.startswith(f"{top}.") for top in layer - {"exporter"}):
            return depth
    return len(LAYERS) - 1


def test_imports_flow_from_the_entry_points_down() -> None:
    upward = sorted(
        f"{source} -> {target}"
        for source, targets in graph().items()
        for target in targets
        if layer_of(target) < layer_of(source)
    )
    assert upward == []


def test_no_source_file_over_400_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for folder in SIZED
        for path in (ROOT / folder).rglob("*")
        if path.suffix in (".py", ".libsonnet", ".jsonnet")
        and (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_no_re_export_shims() -> None:
    """A name is imported from where it lives or from its subpackage, never passed on by
    an unrelated module (``from x import y as y  # re-exported``)."""
    shims = [
        f"{module}: {alias.name}"
        for module, path in modules().items()
        if path.name != "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.asname == alias.name
    ]
    assert shims == []


def test_every_subpackage_lists_its_public_names() -> None:
    for init in PACKAGE.glob("*/__init__.py"):
        tree = ast.parse(init.read_text(encoding="utf-8"))
        exported = [
            node
            for node in tree.body
            if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
        ]
        assert exported, f"{init.relative_to(ROOT)} has no __all__"
        assert ast.get_docstring(tree), f"{init.relative_to(ROOT)} says nothing of its modules"
