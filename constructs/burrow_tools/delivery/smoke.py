"""`make smoke ENV=…`: after a deploy, every Burrow workload must roll out and answer `/ready` with 200.

Cloud environments get their kubeconfig from `aws eks update-kubeconfig`; `dev` uses its
configured kubeconfig context. The check runs inside each pod (`kubectl exec`), so it passes
through the cluster without opening the namespace's NetworkPolicies.

With a pull request number it checks that PR's preview (namespace `burrow-pr-<n>`) in the
environment's cluster instead.

Usage: python -m burrow_tools.delivery.smoke <env> [pr]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from burrow.config.loader import load_environment
from burrow.errors import BurrowError
from burrow.previews import PreviewRequest, parse_pr

ROOT = Path(__file__).resolve().parents[3]
WORKLOADS = ("producer", "consumer")
PROBE = "import urllib.request as u; r = u.urlopen('http://127.0.0.1:5000/ready', timeout=5); print(r.status, r.read().decode())"


def kubectl_context(env_name: str, namespace: str | None = None) -> list[str]:
    env = load_environment(env_name, ROOT / "environments")
    namespace = namespace or env.namespace
    if env.on_aws:
        cluster = f"burrow-{env.name}"
        subprocess.run(
            ["aws", "eks", "update-kubeconfig", "--name", cluster, "--region", env.aws.region, "--alias", cluster],
            check=True,
        )
        return ["kubectl", "--context", cluster, "-n", namespace]
    assert env.cluster.existing is not None
    return ["kubectl", "--context", env.cluster.existing.context, "-n", namespace]


def smoke(env_name: str, pr: int | None = None) -> None:
    kubectl = kubectl_context(env_name, PreviewRequest(pr).namespace if pr else None)
    for workload in WORKLOADS:
        subprocess.run([*kubectl, "rollout", "status", f"deploy/{workload}", "--timeout=300s"], check=True)
        result = subprocess.run(
            [*kubectl, "exec", f"deploy/{workload}", "--", "python", "-c", PROBE], capture_output=True, text=True
        )
        if result.returncode != 0 or not result.stdout.startswith("200"):
            raise BurrowError(f"{workload} in {env_name} is not ready: {result.stdout.strip()} {result.stderr.strip()}")
        print(f"smoke: {env_name} {workload} ready")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    try:
        smoke(sys.argv[1], parse_pr(sys.argv[2]) if len(sys.argv) == 3 else None)
    except (BurrowError, subprocess.CalledProcessError) as exc:
        print(f"smoke: FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
