"""`make validate`: `terraform init` + `terraform validate` of every synthesized stack whose providers
Terraform can install here. Stacks it cannot install providers for are listed by name, never passed.

Usage: python -m burrow_tools.terraform.validate [cdktf.out]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from burrow_tools.terraform.cli import (
    ProviderMirror,
    TerraformUnavailable,
    find_mirror,
    provider_address,
    terraform_binary,
    write_cli_config,
)


@dataclass(frozen=True)
class StackResult:
    stack: str
    status: str  # "valid", "invalid", "not validated"
    detail: str = ""


def required_providers(stack_dir: Path) -> dict[str, str]:
    """`address → version` of every provider the synthesized stack requires."""
    config = json.loads((stack_dir / "cdk.tf.json").read_text())
    wanted = config.get("terraform", {}).get("required_providers", {})
    return {provider_address(p["source"]): p.get("version", "") for p in wanted.values()}


def terraform_env(outdir: Path, mirror: ProviderMirror | None) -> dict[str, str]:
    """Environment for every Terraform call: the generated CLI config and a shared plugin cache."""
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1", "TF_INPUT": "0"}
    cache = outdir / ".terraform-plugin-cache"
    cache.mkdir(parents=True, exist_ok=True)
    env["TF_PLUGIN_CACHE_DIR"] = str(cache.resolve())
    config = write_cli_config(mirror, outdir / "terraform.rc")
    if config is not None:
        env["TF_CLI_CONFIG_FILE"] = str(config.resolve())
    return env


def run_terraform(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([terraform_binary(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def diagnostics(output: str) -> str:
    report = json.loads(output)
    problems = []
    for d in report.get("diagnostics", []):
        where = f" ({d['range']['filename']}:{d['range']['start']['line']})" if d.get("range") else ""
        detail = f": {d['detail']}" if d.get("detail") else ""
        problems.append(f"{d['severity']}: {d['summary']}{detail}{where}")
    return "; ".join(problems)


def validate_stack(stack_dir: Path, env: dict[str, str], mirror: ProviderMirror | None) -> StackResult:
    name = stack_dir.name
    providers = required_providers(stack_dir)
    if mirror is not None:
        missing = sorted(f"{a} {v}" for a, v in providers.items() if not mirror.has(a, v))
        if missing:
            return StackResult(name, "not validated", "providers not installable here: " + ", ".join(missing))
    init = run_terraform(["init", "-backend=false", "-no-color"], stack_dir, env)
    if init.returncode != 0:
        return StackResult(name, "invalid", "terraform init failed: " + init.stderr.strip()[-2000:])
    check = run_terraform(["validate", "-json", "-no-color"], stack_dir, env)
    report = json.loads(check.stdout)
    if not report.get("valid"):
        return StackResult(name, "invalid", diagnostics(check.stdout))
    warnings = report.get("warning_count", 0)
    return StackResult(name, "valid", f"{warnings} warning(s)" if warnings else "")


def registry_mode() -> bool:
    """True where Terraform may install providers from the public registry (GitHub's runners)."""
    return os.environ.get("BURROW_TF_REGISTRY") == "1"


def validate_all(outdir: Path, require_mirror: bool) -> list[StackResult]:
    mirror = find_mirror()
    if mirror is None and require_mirror:
        raise TerraformUnavailable("no Terraform provider mirror found (searched for terraform-provider-* binaries)")
    terraform_binary()
    env = terraform_env(outdir, mirror)
    stacks = sorted(p.parent for p in (outdir / "stacks").glob("*/cdk.tf.json"))
    if not stacks:
        raise TerraformUnavailable(f"no synthesized stacks under {outdir}/stacks; run `make synth` first")
    return [validate_stack(stack, env, mirror) for stack in stacks]


def main(argv: list[str]) -> int:
    outdir = Path(argv[0]) if argv else Path("cdktf.out")
    # CI must prove the AWS stacks with the mirrored provider; it never silently skips them.
    require_mirror = os.environ.get("CI") == "true" and not registry_mode()
    try:
        results = validate_all(outdir, require_mirror)
    except TerraformUnavailable as exc:
        print(f"validate: {exc}", file=sys.stderr)
        return 1
    for result in results:
        print(f"{result.status:<14} {result.stack:<18} {result.detail}")
    valid = [r for r in results if r.status == "valid"]
    invalid = [r for r in results if r.status == "invalid"]
    skipped = [r.stack for r in results if r.status == "not validated"]
    print(f"\n{len(valid)} valid, {len(invalid)} invalid, {len(skipped)} not validated")
    if skipped:
        print("not validated (kubernetes/helm/random providers cannot be installed here): " + ", ".join(skipped))
    return 1 if invalid or not valid else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
