"""`make mutation`: keep a cosmic-ray session to the code under test, skip the rest.

Usage: python tests/tools/mutation_scope.py <config.toml> <session.sqlite>
The config's `[burrow-mutation] scope` lists "<file>:<function>[,<function>…]"; a mutation in a
listed file outside the listed top-level functions and classes is marked skipped (in
apps/producer/producer.py the publishing threads, which the broker tiers test, not the contract).
Files not listed are kept whole. A mutation inside a function's annotations is skipped too in a
module that has `from __future__ import annotations`: they stay strings nobody evaluates, so the
mutant is equivalent by construction. Runs with .venv-mutation's interpreter (cosmic-ray's API).
"""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path


def line_ranges(path: Path, names: set[str]) -> list[range]:
    tree = ast.parse(path.read_text())
    return [
        range(node.lineno, node.end_lineno + 1)
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in names
    ]


def signature_annotations(path: Path) -> list[ast.expr]:
    """The argument and return annotations of `path`'s functions, if the module never evaluates them."""
    tree = ast.parse(path.read_text())
    lazy = any(
        isinstance(node, ast.ImportFrom)
        and node.module == "__future__"
        and any(alias.name == "annotations" for alias in node.names)
        for node in tree.body
    )
    if not lazy:
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            arguments = node.args
            every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs, arguments.vararg, arguments.kwarg]
            found += [argument.annotation for argument in every if argument is not None and argument.annotation]
            found += [node.returns] if node.returns else []
    return found


def in_annotation(annotations: list[ast.expr], start: tuple[int, int], end: tuple[int, int]) -> bool:
    return any((a.lineno, a.col_offset) <= start and end <= (a.end_lineno, a.end_col_offset) for a in annotations)


def main(config: str, session: str) -> int:
    # Imported here: only .venv-mutation has cosmic-ray, and pytest (markdown-docs) imports this file.
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    scopes = tomllib.loads(Path(config).read_text()).get("burrow-mutation", {}).get("scope", [])
    kept = {}
    for scope in scopes:
        file, _, names = scope.partition(":")
        kept[Path(file)] = line_ranges(Path(file), set(names.split(",")))
    skipped = annotations = 0
    lazy: dict[Path, list[ast.expr]] = {}
    with use_db(session, WorkDB.Mode.open) as db:
        for item in db.pending_work_items:
            spec = item.mutations[0]
            path = Path(spec.module_path)
            ranges = kept.get(path)
            if path not in lazy:
                lazy[path] = signature_annotations(path)
            if ranges is not None and not any(spec.start_pos[0] in r for r in ranges):
                skipped += 1
            elif in_annotation(lazy[path], tuple(spec.start_pos), tuple(spec.end_pos)):
                annotations += 1
            else:
                continue
            db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))
        print(
            f"mutation: {session}: {db.num_work_items - skipped - annotations} mutants to run, {skipped} outside "
            f"the scope and {annotations} in annotations never evaluated skipped"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
