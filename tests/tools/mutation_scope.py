"""`make mutation`: keep a cosmic-ray session to the code under test, skip the rest.

Usage: python tests/tools/mutation_scope.py <config.toml> <session.sqlite>
The config's `[burrow-mutation] scope` lists "<file>:<function>[,<function>…]"; a mutation in a
listed file outside the listed top-level functions and classes is marked skipped (in
apps/producer/producer.py the publishing threads, which the broker tiers test, not the contract).
Files not listed are kept whole. Runs with .venv-mutation's interpreter (cosmic-ray's API).
"""

from __future__ import annotations

import ast
import sys
import tomllib
from pathlib import Path


def line_ranges(path: Path, names: set[str]) -> list[range]:
    tree = ast.parse(path.read_text())
    return [range(node.lineno, node.end_lineno + 1) for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in names]


def main(config: str, session: str) -> int:
    # Imported here: only .venv-mutation has cosmic-ray, and pytest (markdown-docs) imports this file.
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    scopes = tomllib.loads(Path(config).read_text()).get("burrow-mutation", {}).get("scope", [])
    kept = {}
    for scope in scopes:
        file, _, names = scope.partition(":")
        kept[Path(file)] = line_ranges(Path(file), set(names.split(",")))
    skipped = 0
    with use_db(session, WorkDB.Mode.open) as db:
        for item in db.pending_work_items:
            spec = item.mutations[0]
            ranges = kept.get(Path(spec.module_path))
            if ranges is not None and not any(spec.start_pos[0] in r for r in ranges):
                db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED))
                skipped += 1
        print(f"mutation: {session}: {db.num_work_items - skipped} mutants to run, {skipped} outside the scope skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
