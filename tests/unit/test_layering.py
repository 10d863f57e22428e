"""The package's shape, kept: no import circles, and each layer imports only what it may.

Every import counts, also those inside functions and under ``TYPE_CHECKING``: a circle that
only type checkers see is still two modules that cannot be read apart.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "oomlab"

RULES_MAY_NOT_IMPORT = (
    *("os", "pathlib", "shutil", "subprocess", "socket", "http", "urllib", "urllib3"),
    *("docker", "kopf", "requests", "kubernetes.client", "kubernetes.config", "kubernetes.watch"),
)
"""Modules that do I/O; the rules take text and numbers, never fetch them."""

MAX_LINES = 500
BEING_SPLIT: set[str] = set()
"""Modules still over :data:`MAX_LINES` while their split is under way (issue 15); one that is no
longer over it fails the test until it leaves this set."""


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(path, root): path for path in sorted(root.rglob("*.py"))}


def _resolved(node: ast.ImportFrom, name: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = name.split(".") if is_package else name.split(".")[:-1]
    anchor = parts[: len(parts) - node.level + 1]
    return ".".join([*anchor, *([node.module] if node.module else [])])


def imported_names(path: Path, name: str) -> Iterator[str]:
    """Every dotted name ``path`` imports (``from X import Y`` as ``X`` and ``X.Y``), anywhere in
    the file."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolved(node, name, path.name == "__init__.py")
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def module_imports(path: Path, name: str, known: Mapping[str, Path]) -> set[str]:
    """The package's modules ``path`` imports: ``from X import Y`` is an edge to ``X.Y`` when
    that is a module, else to ``X``. Reaching a submodule does not count as importing its
    package's ``__init__``."""
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = _resolved(node, name, path.name == "__init__.py")
            for alias in node.names:
                if f"{base}.{alias.name}" in known:
                    targets.add(f"{base}.{alias.name}")
                elif base in known:
                    targets.add(base)
    targets.discard(name)
    return targets


def import_graph(known: Mapping[str, Path]) -> dict[str, set[str]]:
    return {name: module_imports(path, name, known) for name, path in known.items()}


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _write(root: Path, files: Mapping[str, str]) -> Path:
    for relative, text in files.items():
        path = root / "oomlab" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "oomlab"


# -- the checker checks -----------------------------------------------------------------------


def test_a_circle_through_a_function_level_import_is_found(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "__init__.py": "",
            "cli/__init__.py": "",
            "cli/a.py": "from oomlab.cli.b import thing\n",
            "cli/b.py": "def thing():\n    from oomlab.cli import a\n    return a\n",
            "cli/c.py": "from . import b\n",
        },
    )
    graph = import_graph(modules(root))
    assert graph["oomlab.cli.c"] == {"oomlab.cli.b"}
    assert cycles(graph) == [["oomlab.cli.a", "oomlab.cli.b"]]


def test_a_name_from_a_package_is_an_edge_to_its_init(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "__init__.py": "",
            "runners/__init__.py": "from oomlab.runners.base import Run\n",
            "runners/base.py": "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from oomlab.runners import Run\n",
        },
    )
    graph = import_graph(modules(root))
    assert graph["oomlab.runners.base"] == {"oomlab.runners"}
    assert cycles(graph) == [["oomlab.runners", "oomlab.runners.base"]]


# -- the package ------------------------------------------------------------------------------

GRAPH = import_graph(modules())


def test_the_graph_sees_the_package() -> None:
    assert "oomlab.rules.semantics" in GRAPH["oomlab.rules.parity"]
    assert "oomlab.cli.main" in GRAPH
    assert len(GRAPH) > 30


def test_no_import_circles() -> None:
    assert cycles(GRAPH) == []


def _importing(prefix: str, forbidden: tuple[str, ...]) -> list[str]:
    def under(name: str, parent: str) -> bool:
        return name == parent or name.startswith(parent + ".")

    return sorted(
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        if under(name, prefix)
        for target in targets
        if any(under(target, f) for f in forbidden)
    )


def test_rules_import_only_rules() -> None:
    outside = [
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        if name.startswith("oomlab.rules")
        for target in targets
        if not target.startswith("oomlab.rules")
    ]
    assert outside == []


@pytest.mark.parametrize("name", sorted(n for n in modules() if n.startswith("oomlab.rules")))
def test_rules_import_nothing_that_does_io(name: str) -> None:
    imported = set(imported_names(modules()[name], name))
    doing_io = [
        i for i in imported for m in RULES_MAY_NOT_IMPORT if i == m or i.startswith(m + ".")
    ]
    assert sorted(doing_io) == []


def test_the_operator_never_imports_the_cli() -> None:
    assert _importing("oomlab.operator", ("oomlab.cli",)) == []


def test_runners_never_import_the_faces() -> None:
    assert _importing("oomlab.runners", ("oomlab.cli", "oomlab.operator")) == []


def test_the_shared_modules_never_import_the_faces() -> None:
    shared = ("oomlab.kube", "oomlab.experiment", "oomlab.runners", "oomlab.rules")
    assert [edge for name in shared for edge in _importing(name, ("oomlab.cli",))] == []


def test_no_module_is_over_the_line_limit() -> None:
    lines = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    over = {name for name, count in lines.items() if count > MAX_LINES}
    assert over - BEING_SPLIT == set(), {name: lines[name] for name in over}
    assert BEING_SPLIT - over == set(), "split now: take it out of BEING_SPLIT"
