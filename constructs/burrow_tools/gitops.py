"""`make gitops-export ENV=<env> [DIR=<checkout>/clusters/<env>]`: the GitOps tree of an environment
in `delivery: gitops`, checked before it goes to Git.

The tree (`burrow.gitops`, written by synth to `cdktf.out/gitops/<env>/`) must build with the
real kustomize (`kubectl kustomize`: the machine's kubectl, else the one in the locked
kubectl-layer package), every built-in object it builds must pass strict schema validation for
the environment's Kubernetes version, and it must hold no Secret. With DIR the tree replaces that
folder (a checkout of the GitOps repository at the configured path).

Usage: python -m burrow_tools.gitops <cdktf.out> <env> [dir] | --check <env>
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from burrow.addons.flux import TENANT_KINDS
from burrow.config.loader import load_environment
from burrow.errors import BurrowError
from burrow.k8s.validate import validate_objects
from burrow_tools.helm import kubectl_binary, manifests

ROOT = Path(__file__).resolve().parents[2]


def kustomize_build(tree: Path, cache_dir: Path) -> list[dict]:
    kubectl = kubectl_binary(cache_dir)
    result = subprocess.run([kubectl, "kustomize", str(tree)], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise BurrowError(f"kubectl kustomize {tree} failed: {result.stderr.strip()}")
    return manifests(result.stdout)


def resource_of(kind: str) -> str:
    """The API resource (plural) of a kind, as RBAC names it."""
    lower = kind.lower()
    if lower.endswith("s"):
        return lower + "es"
    return lower[:-1] + "ies" if lower.endswith("y") else lower + "s"


def outside_tenant(obj: dict) -> str | None:
    """Why Flux's tenant (the app namespace's `flux-deployer`) could not apply `obj`, or None."""
    group = obj["apiVersion"].rpartition("/")[0]
    if resource_of(obj["kind"]) not in TENANT_KINDS.get(group, []):
        return (f"{obj['kind']}/{obj['metadata']['name']}: Flux applies the tree as a tenant of the app namespace, "
                f"whose Role does not cover {obj['kind']} ({group or 'core'}); deliver it from Terraform")
    return None


def check_tree(tree: Path, kubernetes_version: str, cache_dir: Path) -> list[dict]:
    """The objects the tree builds; raises with every problem found."""
    objects = kustomize_build(tree, cache_dir)
    problems = validate_objects(objects, kubernetes_version)
    problems += [f"{o['kind']}/{o['metadata']['name']}: a Secret never goes to Git" for o in objects if o["kind"] == "Secret"]
    problems += [problem for problem in map(outside_tenant, objects) if problem]
    if problems:
        raise BurrowError("the GitOps tree is not valid:\n  " + "\n  ".join(problems))
    return objects


def gitops_environment(env_name: str):
    """The environment's configuration; refused (before any synthesis) unless it is in delivery: gitops."""
    env = load_environment(env_name, ROOT / "environments")
    if env.delivery != "gitops":
        raise BurrowError(f"ENV = {env_name!r}: delivery is {env.delivery!r}; set delivery: gitops (and gitops.repository) "
                          f"in environments/{env_name}.yaml to export a GitOps tree")
    return env


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    if argv[0] == "--check":  # `make gitops-export` asks first, so a wrong ENV costs no synthesis
        try:
            gitops_environment(argv[1])
        except BurrowError as exc:
            print(f"gitops-export: {exc}", file=sys.stderr)
            return 2
        return 0
    outdir, env_name = Path(argv[0]), argv[1]
    try:
        env = gitops_environment(env_name)
        tree = outdir / "gitops" / env_name
        with tempfile.TemporaryDirectory(prefix="burrow-kubectl-") as cache:
            objects = check_tree(tree, env.kubernetes.version, Path(cache))
        kinds = sorted({o["kind"] for o in objects})
        print(f"gitops-export: {tree}: kustomize built {len(objects)} objects ({', '.join(kinds)}); "
              f"strict validation passed; no Secret")
        if len(argv) == 3:
            target = Path(argv[2])
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(tree, target)
            print(f"gitops-export: wrote the tree to {target}; commit it to {env.gitops.branch} of {env.gitops.repository}")
    except BurrowError as exc:
        print(f"gitops-export: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
