"""Every string in a synthesized stack must be a valid Terraform template, checked by the real Terraform.

Terraform reads every JSON string as a template: `${...}` is an interpolation and `%{...}` a
directive, so literal text that contains them (a Grafana `${datasource}`, a shell `${VAR}` in a
chart value) breaks `plan` with "Invalid reference" unless it is written `$${` / `%%{`.
`terraform validate` can only run where a stack's providers install; this check needs none:
it copies every string of a stack into the `locals` of a provider-free configuration and runs
`terraform validate` on it. References to the stack's own resources and data sources are
undeclared there; they count as known when the stack declares them (ephemeral resources too). Anything else Terraform
reports (an invalid reference, a bad template) is a problem in the stack.

Usage: python -m burrow_tools.terraform.templates [cdktf.out]
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from burrow_tools.terraform.cli import terraform_binary
from burrow_tools.terraform.validate import run_terraform, terraform_env

# Where a stack's strings can hold templates (the `terraform` block holds backend and providers' settings).
CHECKED_BLOCKS = ("resource", "data", "provider", "output", "locals", "module")
UNDECLARED = re.compile(r'An? (managed|data|ephemeral) resource "([^"]+)" "([^"]+)" has not been declared')


def strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key != "//":  # cdktf's metadata, not configuration
                yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def declared(stack: dict) -> set[tuple[str, str, str]]:
    blocks = {"managed": "resource", "data": "data", "ephemeral": "ephemeral"}
    return {(mode, kind, name) for mode, block in blocks.items() for kind, items in stack.get(block, {}).items()
            for name in items}


def repeated(stack: dict) -> dict[str, list[str]]:
    """The strings of resources and data sources repeated with `for_each` or `count` (where
    `each.*` or `count.index` may be used), by meta-argument."""
    found: dict[str, list[str]] = {"for_each": [], "count": []}
    for block in ("resource", "data"):
        for items in stack.get(block, {}).values():
            for item in items.values():
                meta = next((key for key in found if key in item), None)
                if meta is not None:
                    found[meta].extend(strings(item))
    return found


def configuration(stack: dict) -> dict:
    """A provider-free configuration holding every string of `stack`: in `locals`, or, for a repeated
    resource, as the input of a built-in `terraform_data` repeated the same way (never instantiated)."""
    each = repeated(stack)
    inside = {text for texts in each.values() for text in texts}
    texts = [text for block in CHECKED_BLOCKS for text in strings(stack.get(block, {})) if text not in inside]
    config: dict = {"locals": {f"s{i}": text for i, text in enumerate(texts)}}
    empty = {"for_each": {}, "count": 0}
    resources = {f"{meta}{i}": {meta: empty[meta], "input": text} for meta, texts in each.items()
                 for i, text in enumerate(texts)}
    if resources:
        config["resource"] = {"terraform_data": resources}
    return config


def check_stack(stack_file: Path, work: Path, env: dict[str, str]) -> list[str]:
    """Problems Terraform finds in the strings of one synthesized stack (empty: all valid)."""
    stack = json.loads(stack_file.read_text())
    work.mkdir(parents=True, exist_ok=True)
    (work / "strings.tf.json").write_text(json.dumps(configuration(stack), indent=1))
    init = run_terraform(["init", "-backend=false", "-input=false", "-no-color"], work, env)
    if init.returncode != 0:
        return [f"terraform init failed: {init.stderr.strip()[-1000:]}"]
    report = json.loads(run_terraform(["validate", "-json", "-no-color"], work, env).stdout)
    known = declared(stack)
    problems = []
    for diagnostic in report.get("diagnostics", []):
        undeclared = UNDECLARED.search(diagnostic.get("detail", ""))
        if undeclared and undeclared.groups() in known:
            continue
        problems.append(f"{diagnostic['summary']}: {diagnostic.get('detail', '')}{_excerpt(diagnostic)}")
    return problems


def _excerpt(diagnostic: dict) -> str:
    """` in "…${datasource}…"`: where in the stack's strings Terraform found the problem."""
    snippet = diagnostic.get("snippet") or {}
    code, start = snippet.get("code", ""), snippet.get("highlight_start_offset", 0)
    end = snippet.get("highlight_end_offset", start)
    return f' in "…{code[max(0, start - 40):end + 40]}…"' if code else ""


def check_outdir(outdir: Path) -> dict[str, list[str]]:
    """`stack name → problems` for every synthesized stack under `outdir`."""
    terraform_binary()
    env = terraform_env(outdir, None)
    results = {}
    with tempfile.TemporaryDirectory(prefix="burrow-templates-") as tmp:
        for stack_file in sorted((outdir / "stacks").glob("*/cdk.tf.json")):
            name = stack_file.parent.name
            results[name] = check_stack(stack_file, Path(tmp) / name, env)
    return results


def main(argv: list[str]) -> int:
    outdir = Path(argv[0]) if argv else Path("cdktf.out")
    results = check_outdir(outdir)
    for name, problems in results.items():
        print(f"{'ok' if not problems else 'INVALID':<8} {name}")
        for problem in problems:
            print(f"         {problem}")
    bad = [name for name, problems in results.items() if problems]
    print(f"\n{len(results) - len(bad)} of {len(results)} stacks hold only valid Terraform strings")
    return 1 if bad or not results else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
