"""`make diff ENV=<env>`: the Terraform plan of every stack of one environment, in dependency order.

`cdktf diff` takes exactly one stack, so Burrow plans the synthesized stacks itself with the
real Terraform: for each stack (dependencies first, from cdktf's manifest) `terraform init`
and `terraform plan`, printed under a header, then one summary line per stack. A stack is
named as **not planned**, with the reason, rather than failing the whole command when:
- Terraform cannot install one of its providers on this machine (only a filesystem mirror
  without it is available), or
- it reads outputs of a stack that has not been applied yet (a new environment: apply the
  earlier stack first, then its dependants can be planned).
Any other failure is a failure (exit status 1).

Usage: python -m burrow_tools.terraform.diff <cdktf.out> <env>
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from burrow_tools.terraform.cli import TerraformUnavailable, find_mirror
from burrow_tools.terraform.validate import registry_mode, required_providers, run_terraform, terraform_env

# What Terraform says when a cross-stack reference reads a stack that has no state yet.
UNAPPLIED_DEPENDENCY = ("Unable to find remote state", "No stored state was found", "does not exist")


@dataclass(frozen=True)
class StackPlan:
    stack: str
    status: str  # "changes", "no changes", "not planned", "failed"
    summary: str
    output: str = ""


def stacks_in_order(outdir: Path, env: str) -> list[str]:
    """The environment's stacks, every stack after the stacks it depends on (cdktf's manifest)."""
    manifest = json.loads((outdir / "manifest.json").read_text())["stacks"]
    wanted = {name: set(entry.get("dependencies", [])) for name, entry in manifest.items() if name.startswith(f"{env}-")}
    ordered: list[str] = []
    while wanted:
        ready = sorted(name for name, deps in wanted.items() if not (deps & set(wanted)))
        if not ready:
            raise RuntimeError(f"stacks depend on each other in a cycle: {sorted(wanted)}")
        ordered += ready
        for name in ready:
            del wanted[name]
    return ordered


def _summary(plan_output: str) -> tuple[str, str]:
    for line in (raw.strip() for raw in plan_output.splitlines()):
        if line.startswith("Plan:"):
            return "changes", line
        if line.startswith("No changes."):
            return "no changes", "No changes."
    return "changes", "plan printed no summary"


def plan_stack(stack_dir: Path, env: dict[str, str], mirror, dependencies: list[str]) -> StackPlan:
    name = stack_dir.name
    if mirror is not None and not registry_mode():
        missing = sorted(f"{a} {v}" for a, v in required_providers(stack_dir).items() if not mirror.has(a, v))
        if missing:
            return StackPlan(name, "not planned", "providers cannot be installed on this machine: " + ", ".join(missing))
    init = run_terraform(["init", "-input=false", "-no-color"], stack_dir, env)
    if init.returncode != 0:
        return StackPlan(name, "failed", "terraform init failed", init.stdout + init.stderr)
    plan = run_terraform(["plan", "-input=false", "-no-color", "-lock=false"], stack_dir, env)
    output = plan.stdout + plan.stderr
    if plan.returncode != 0:
        if dependencies and any(marker in output for marker in UNAPPLIED_DEPENDENCY):
            return StackPlan(
                name,
                "not planned",
                f"reads the outputs of {', '.join(dependencies)}, which has no state yet: apply it first",
            )
        return StackPlan(name, "failed", "terraform plan failed", output)
    status, summary = _summary(output)
    return StackPlan(name, status, summary, output)


def plan_environment(outdir: Path, env_name: str, echo=print) -> list[StackPlan]:
    """Plan every stack of `env_name` synthesized under `outdir`, printing each plan as it comes."""
    stacks = stacks_in_order(outdir, env_name)
    if not stacks:
        raise TerraformUnavailable(f"no stacks of environment {env_name} under {outdir}; run `make synth ENV={env_name}`")
    mirror = find_mirror()
    env = terraform_env(outdir, mirror)
    manifest = json.loads((outdir / "manifest.json").read_text())["stacks"]
    results = []
    for name in stacks:
        echo(f"== {name}")
        result = plan_stack(outdir / "stacks" / name, env, mirror, manifest[name].get("dependencies", []))
        if result.output:
            echo(result.output.rstrip())
        echo(f"-- {name}: {result.status}: {result.summary}\n")
        results.append(result)
    return results


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m burrow_tools.terraform.diff <cdktf.out> <env>", file=sys.stderr)
        return 2
    try:
        results = plan_environment(Path(argv[0]), argv[1], echo=lambda text: print(text, flush=True))
    except TerraformUnavailable as exc:
        print(f"diff: {exc}", file=sys.stderr)
        return 1
    print(f"Summary of {argv[1]}:")
    for result in results:
        print(f"  {result.stack:<24} {result.status:<12} {result.summary}")
    return 1 if any(r.status == "failed" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
