"""`make smoke ENV=…`: after a deploy, every Burrow workload must roll out and answer `/ready` with 200.

Cloud environments get their kubeconfig from `aws eks update-kubeconfig`; `dev` uses its
configured kubeconfig context. The check runs inside each pod (`kubectl exec`), so it passes
through the cluster without opening the namespace's NetworkPolicies.

With a pull request number it checks that PR's preview (namespace `burrow-pr-<n>`) in the
environment's cluster instead. With `--region` it checks that region's cluster (default: the
primary's) and, when the producer is public, `https://<region>.<host>/health` from outside too
(through the region's load balancer, TLS verified), retried while DNS and the load balancer settle.

Usage: python -m burrow_tools.delivery.smoke <env> [pr] [--region <region>]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from burrow.config.loader import load_environment
from burrow.config.schema import EnvironmentConfig
from burrow.errors import BurrowError
from burrow.previews import PreviewRequest, parse_pr

ROOT = Path(__file__).resolve().parents[3]
WORKLOADS = ("producer", "consumer")
PROBE = "import urllib.request as u; r = u.urlopen('http://127.0.0.1:5000/ready', timeout=5); print(r.status, r.read().decode())"


def kubectl_context(env_name: str, namespace: str | None = None, region: str | None = None) -> list[str]:
    env = regional_view(env_name, region)
    namespace = namespace or env.namespace
    if env.on_aws:
        cluster = f"burrow-{env.stack_prefix}"
        subprocess.run(
            ["aws", "eks", "update-kubeconfig", "--name", cluster, "--region", env.aws.region, "--alias", cluster],
            check=True,
        )
        return ["kubectl", "--context", cluster, "-n", namespace]
    assert env.cluster.existing is not None
    return ["kubectl", "--context", env.cluster.existing.context, "-n", namespace]


def regional_view(env_name: str, region: str | None) -> EnvironmentConfig:
    env = load_environment(env_name, ROOT / "environments")
    return env if region is None else env.in_region(region)


def public_health(url: str, seconds: float = 300) -> str:
    """GET `url` until it answers 200 (DNS and a new load balancer take minutes), else BurrowError."""
    deadline = time.monotonic() + seconds
    problem = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - an https URL from the configuration
                return f"{answer.status} {answer.read(200).decode(errors='replace')}"
        except (urllib.error.URLError, OSError) as exc:
            problem = str(exc)
        time.sleep(max(0.0, min(10.0, deadline - time.monotonic())))
    raise BurrowError(f"{url} did not answer 200 within {seconds:.0f} s: {problem}")


def smoke(env_name: str, pr: int | None = None, region: str | None = None) -> None:
    view = regional_view(env_name, region)
    kubectl = kubectl_context(env_name, PreviewRequest(pr).namespace if pr else None, region)
    for workload in WORKLOADS:
        subprocess.run([*kubectl, "rollout", "status", f"deploy/{workload}", "--timeout=300s"], check=True)
        result = subprocess.run(
            [*kubectl, "exec", f"deploy/{workload}", "--", "python", "-c", PROBE], capture_output=True, text=True
        )
        if result.returncode != 0 or not result.stdout.startswith("200"):
            raise BurrowError(f"{workload} in {env_name} is not ready: {result.stdout.strip()} {result.stderr.strip()}")
        print(f"smoke: {env_name} {workload} ready")
    if view.ingress.enabled and pr is None:
        scheme = "https" if view.ingress.tls else "http"
        url = f"{scheme}://{view.aws.region}.{view.ingress.host}/health"
        print(f"smoke: {env_name} {url}: {public_health(url)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="smoke")
    parser.add_argument("env")
    parser.add_argument("pr", nargs="?")
    parser.add_argument("--region")
    args = parser.parse_args()
    try:
        smoke(args.env, parse_pr(args.pr) if args.pr else None, args.region)
    except (BurrowError, subprocess.CalledProcessError) as exc:
        print(f"smoke: FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
