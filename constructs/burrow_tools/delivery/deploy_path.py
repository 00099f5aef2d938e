"""Can the deploys reach the cluster's API from where they run?

An EKS environment says where its deploys come from (`cluster.api_access`); the repository's deploy
workflow says where they actually run (`runs-on` of the job that runs `make deploy ENV=<env>`). A
GitHub-hosted runner is outside every VPC and has no fixed address (GitHub's published ranges run
to thousands, more than the 40 networks EKS accepts), so it reaches the API only through a public
endpoint open to 0.0.0.0/0. `main.py` runs this check before anything is synthesized.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path

import yaml

from burrow.config.loader import DEFAULTS_FILE, read_yaml_mapping
from burrow.config.schema import EnvironmentConfig

WORKFLOW = Path(".github") / "workflows" / "deploy.yml"
#: Labels of GitHub's own runners (ubuntu-24.04, ubuntu-latest, ubuntu-24.04-arm, windows-2025, macos-15, …).
GITHUB_HOSTED = re.compile(r"^(ubuntu|windows|macos)-(latest|[0-9.]+)(-arm|-large|-xlarge)?$")
DEPLOY = re.compile(r"make deploy ENV=([a-z][a-z0-9]*)")
ANYWHERE = "0.0.0.0/0"


def deploy_runners(workflow: Path) -> dict[str, tuple[str, list[str]]]:
    """Environment -> (job, runs-on labels) of the workflow's jobs that run `make deploy ENV=<env>`."""
    if not workflow.exists():
        return {}
    jobs = (yaml.safe_load(workflow.read_text(encoding="utf-8")) or {}).get("jobs", {})
    found: dict[str, tuple[str, list[str]]] = {}
    for job_name, job in jobs.items():
        labels = job.get("runs-on", [])
        labels = [labels] if isinstance(labels, str) else list(labels)
        for step in job.get("steps", []):
            for env_name in DEPLOY.findall(str(step.get("run", ""))):
                found.setdefault(env_name, (job_name, labels))
    return found


def _source(env_dir: Path, env_name: str) -> Path:
    """The file that sets `cluster.api_access` for the environment: its own, else the defaults."""
    own = env_dir / f"{env_name}.yaml"
    return own if "api_access" in (read_yaml_mapping(own).get("cluster") or {}) else env_dir / DEFAULTS_FILE


def deploy_path_problems(
    env: EnvironmentConfig, runners: Mapping[str, tuple[str, list[str]]], env_dir: Path, workflow: Path = WORKFLOW
) -> list[str]:
    """One sentence per way `env`'s deploy job cannot reach its cluster's API (naming file, key, value)."""
    if not env.on_aws or env.name not in runners:
        return []
    job, labels = runners[env.name]
    if not any(GITHUB_HOSTED.match(label) for label in labels):
        return []  # self-hosted or larger runners: where they sit is not in the repository
    source, runs_on = _source(env_dir, env.name), ", ".join(labels)
    where = f"{workflow} job {job!r} deploys {env.name} on GitHub-hosted runners (runs-on: {runs_on})"
    problems = []
    for view in env.regional():  # a region may override cluster settings
        access = view.cluster.api_access
        region = "" if view.is_primary else f" (region {view.aws.region})"
        if access.deploy_from == "vpc":
            problems.append(
                f"{source}: cluster.api_access.deploy_from = 'vpc'{region}: {where}, outside the VPC, so "
                "they cannot reach a private-only endpoint; set deploy_from: internet with public_cidrs, "
                "or run that job on self-hosted runners inside the VPC"
            )
        elif ANYWHERE not in access.public_cidrs:
            problems.append(
                f"{source}: cluster.api_access.public_cidrs = {access.public_cidrs!r}{region}: {where}, "
                f"whose addresses are not fixed and not among these networks; use public_cidrs: "
                f"[{ANYWHERE}], or run that job on runners with fixed egress addresses (self-hosted, or "
                "larger runners with static IPs) and list those"
            )
    return problems


def deploy_path_check(root: Path) -> Callable[[list[EnvironmentConfig]], list[str]]:
    """The check `main.py` runs on the loaded environments: every deploy job reaches its cluster."""

    def check(configs: list[EnvironmentConfig]) -> list[str]:
        runners = deploy_runners(root / WORKFLOW)
        return [
            problem
            for env in configs
            for problem in deploy_path_problems(env, runners, root / "environments", WORKFLOW)
        ]

    return check
