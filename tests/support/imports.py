"""The `burrow` package's import graph, read from its source with `ast` (nothing is imported).

Every import counts wherever it is written: at module level, inside a function (a deferred import
still ties the two modules together) or under `if TYPE_CHECKING:`.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.services import ROOT

PACKAGE = ROOT / "constructs" / "burrow"


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name, for its `__init__`)."""
    return {module_name(path, package): path for path in sorted(package.rglob("*.py"))}


def _by_name(tree: ast.Module, known: dict[str, Path]) -> set[str]:
    """Modules a module imports by name through `importlib.import_module` (the package's lazy
    exports): every string literal in it that names one of the package's modules."""
    calls_importlib = any(isinstance(node, ast.Attribute) and node.attr == "import_module" for node in ast.walk(tree))
    if not calls_importlib:
        return set()
    return {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and node.value in known}


def _imported(node: ast.Import | ast.ImportFrom, importer: str, is_package: bool) -> list[str]:
    """The dotted names an import statement may load: the module, or each `module.name` it names."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        here = importer.split(".") if is_package else importer.split(".")[:-1]
        here = here[: len(here) - (node.level - 1)]
        base = ".".join([*here, base] if base else here)
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def imports(package: Path = PACKAGE) -> dict[str, list[tuple[str, str]]]:
    """Module -> every (module, name) it imports from the package, as written: `name` is "" for a
    whole module (`import a.b`, `from a import b` when `b` is a module, a lazy export by name)."""
    known = modules(package)
    found: dict[str, list[tuple[str, str]]] = {name: [] for name in known}
    for importer, path in known.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), filename=str(path))
        found[importer] += [(name, "") for name in sorted(_by_name(tree, known))]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                base, *names = _imported(node, importer, is_package)
                if isinstance(node, ast.Import):
                    found[importer] += [(name, "") for name in (base, *names) if name in known]
                    continue
                for name in names:
                    if name in known:
                        found[importer].append((name, ""))
                    elif base in known:
                        found[importer].append((base, name.rsplit(".", 1)[1]))
    return found


def graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (a submodule named by `from pkg import sub` included).

    Importing `a.b.c` first runs the packages `a` and `a.b`; an importer outside such a package depends
    on its `__init__` too.
    """
    known = modules(package)
    edges: dict[str, set[str]] = {name: set() for name in known}
    for importer, imported in imports(package).items():
        for name, _ in imported:
            parts = name.split(".")
            for depth in range(2, len(parts) + 1):
                target = ".".join(parts[:depth])
                inside = importer == target or importer.startswith(f"{target}.")
                if target in known and not inside:
                    edges[importer].add(target)
    return edges


def packages(edges: dict[str, set[str]], depth: int = 2) -> dict[str, set[str]]:
    """The graph between the package's parts `depth` names deep (`burrow.common`, `burrow.cluster`,
    a top-level module such as `burrow.synth`): a module of one part importing one of another."""

    def part(module: str) -> str:
        return ".".join(module.split(".")[:depth])

    folded: dict[str, set[str]] = {part(module): set() for module in edges}
    for module, targets in edges.items():
        folded[part(module)] |= {part(t) for t in targets if part(t) != part(module)}
    return folded


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each tangle (`tangles`): `[a, b, c, a]`."""
    return [_cycle_through(group, edges) for group in tangles(edges)]


def tangles(edges: dict[str, set[str]]) -> list[set[str]]:
    """Every strongly connected group of more than one module (or a module importing itself): each
    member reaches every other through imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1 or node in edges[node]:
                groups.append(group)

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def _cycle_through(group: set[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest cycle from the group's first module back to itself, within the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(edges[node] & group):
                if nxt == start:
                    return [*paths[node], start]
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no cycle through {sorted(group)}")
