"""`make github-environments`: create the GitHub deployment environments from .github/environments.json.

`approvers` are `team:<slug>` or `user:<login>`; an environment with approvers makes every deploy
job that uses it wait for one of them. Deploys only come from `branch`. Needs the `gh` CLI,
authenticated as a repository admin.

Usage: python -m burrow_tools.delivery.environments [.github/environments.json]
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def gh(*args: str, payload: dict | None = None) -> dict:
    result = subprocess.run(
        ["gh", "api", *args, *(["--input", "-"] if payload is not None else [])],
        input=json.dumps(payload) if payload is not None else None,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout or "{}")


def reviewer(spec: str, org: str) -> dict:
    kind, name = spec.split(":", 1)
    if kind == "team":
        return {"type": "Team", "id": gh(f"orgs/{org}/teams/{name}")["id"]}
    return {"type": "User", "id": gh(f"users/{name}")["id"]}


def configure(path: Path) -> None:
    repo = gh("repos/{owner}/{repo}")
    org = repo["owner"]["login"]
    for env, spec in json.loads(path.read_text()).items():
        gh(
            "-X",
            "PUT",
            f"repos/{repo['full_name']}/environments/{env}",
            payload={
                "reviewers": [reviewer(r, org) for r in spec["approvers"]] or None,
                "prevent_self_review": bool(spec["approvers"]),
                "deployment_branch_policy": {"protected_branches": False, "custom_branch_policies": True},
            },
        )
        gh(
            "-X",
            "POST",
            f"repos/{repo['full_name']}/environments/{env}/deployment-branch-policies",
            payload={"name": spec["branch"], "type": "branch"},
        )
        print(f"configured {env}: approvers {spec['approvers'] or 'none'}, deploys from {spec['branch']}")


if __name__ == "__main__":
    configure(Path(sys.argv[1] if len(sys.argv) > 1 else ".github/environments.json"))
