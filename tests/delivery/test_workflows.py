"""The GitHub workflows: schema-valid, pinned, least-privilege, and only calling make targets."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from burrow.config.loader import load_environment
from tests.support.services import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
CHECK_JSONSCHEMA = ROOT / ".venv-tools" / "bin" / "check-jsonschema"
PROMOTION = ["dev", "qa", "uat", "preprod", "prod"]


def load(path: Path) -> dict:
    # PyYAML reads the key `on` as True; give it back its name.
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))
    return data


def steps(workflow: dict):
    for name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield name, step


def make_targets() -> set[str]:
    targets = set()
    for line in (ROOT / "Makefile").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_. -]+):(?!=)", line)
        if match and not line.startswith(("\t", ".PHONY")):
            targets.update(match.group(1).split())
    return targets


def test_there_are_four_workflows():
    assert [p.name for p in WORKFLOWS] == ["deploy.yml", "images.yml", "preview.yml", "pull-request.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_the_github_schema(path):
    assert CHECK_JSONSCHEMA.exists(), "check-jsonschema is not installed (make test installs it)"
    result = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_run_steps_only_call_existing_make_targets(path):
    targets = make_targets()
    for job, step in steps(load(path)):
        if "run" not in step:
            continue
        command = step["run"].strip()
        assert command.startswith("make ") and "\n" not in command, f"{job}: logic belongs in the Makefile: {command}"
        target = command.split()[1]
        assert target in targets, f"{job}: make {target} does not exist"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_sha(path):
    for job, step in steps(load(path)):
        if "uses" in step:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", step["uses"]), f"{job}: {step['uses']}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_permissions_are_read_only_by_default_and_declared_per_job(path):
    workflow = load(path)
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"{name} declares no permissions"
        assert set(job["permissions"].values()) <= {"read", "write"}
        assert job["permissions"].get("contents") == "read", f"{name} must not write to the repository"


def test_deploys_promote_in_order_each_in_its_environment_never_overlapping():
    jobs = load(ROOT / ".github" / "workflows" / "deploy.yml")["jobs"]
    assert list(jobs) == PROMOTION
    for previous, env in zip(PROMOTION, PROMOTION[1:], strict=False):
        assert jobs[env]["needs"] == previous
    for env in PROMOTION:
        assert jobs[env]["environment"] == env
        assert jobs[env]["concurrency"] == {"group": f"deploy-{env}", "cancel-in-progress": False}
        runs = [s["run"] for s in jobs[env]["steps"] if "run" in s]
        config = load_environment(env, ROOT / "environments")
        if not config.multi_region:
            assert f"make deploy ENV={env} RELEASE=release.json" in runs
            assert runs[-1] == f"make smoke ENV={env}"
            continue
        # Region by region, the primary first, each smoke checked before the next region starts.
        rollout = [r for r in runs if r.startswith(("make deploy", "make smoke"))]
        assert rollout == [step for region in config.region_names for step in (
            f"make deploy ENV={env} REGION={region} RELEASE=release.json", f"make smoke ENV={env} REGION={region}")]


def test_deploy_jobs_never_build_images():
    text = (ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    for forbidden in ("make images", "docker", "build-push-action", "buildx"):
        assert forbidden not in text


def test_preprod_and_prod_need_an_approval_and_the_others_do_not():
    environments = json.loads((ROOT / ".github" / "environments.json").read_text())
    assert sorted(environments) == sorted(PROMOTION)
    for env in PROMOTION:
        approvers = environments[env]["approvers"]
        assert bool(approvers) == (env in ("preprod", "prod")), env
        assert all(re.fullmatch(r"(team|user):[\w.-]+", a) for a in approvers)


def test_images_are_built_once_scanned_and_recorded_on_main():
    workflow = load(ROOT / ".github" / "workflows" / "images.yml")
    assert workflow["on"] == {"push": {"branches": ["main"]}}
    runs = [s["run"].split()[1] for _, s in steps(workflow) if "run" in s]
    assert runs == ["images", "scan-images", "release"]


def test_pull_requests_run_the_checks_and_comment_diffs():
    workflow = load(ROOT / ".github" / "workflows" / "pull-request.yml")
    runs = [s["run"].split()[1] for _, s in steps(workflow) if "run" in s]
    assert runs == ["test", "synth", "validate", "check-clean", "pr-diffs"]
    assert workflow["jobs"]["diff"]["permissions"]["pull-requests"] == "write"
    assert workflow["jobs"]["test"]["services"]["rabbitmq"]["ports"] == ["5672:5672", "15692:15692"]


def test_previews_deploy_on_every_push_and_are_destroyed_on_close_and_expiry():
    workflow = load(ROOT / ".github" / "workflows" / "preview.yml")
    assert workflow["on"]["pull_request"]["types"] == ["opened", "synchronize", "reopened", "closed"]
    assert workflow["on"]["schedule"] == [{"cron": "17 * * * *"}]
    # Two pushes to one PR queue behind each other; a deploy or destroy is never cut off halfway.
    assert workflow["concurrency"] == {
        "group": "preview-${{ github.event.pull_request.number || 'expiry' }}", "cancel-in-progress": False}
    jobs = workflow["jobs"]
    assert jobs["images"]["if"] == "github.event_name == 'pull_request' && github.event.action != 'closed'"
    assert jobs["deploy"]["needs"] == "images"
    assert jobs["destroy"]["if"] == "github.event_name == 'pull_request' && github.event.action == 'closed'"
    assert jobs["expire"]["if"] == "github.event_name == 'schedule'"

    def runs(job: str) -> list[str]:
        return [s["run"] for s in jobs[job]["steps"] if "run" in s]

    assert [r.split()[1] for r in runs("images")] == ["images", "scan-images", "release"]  # built once per push
    pr = "${{ github.event.pull_request.number }}"
    assert runs("deploy") == [
        f"make preview PR={pr} RELEASE=release.json COMMIT=${{{{ github.event.pull_request.head.sha }}}}",
        f"make smoke ENV=qa PR={pr}",
        "make pr-comment ENV=preview FILE=preview.md",
    ]
    assert not any("docker" in r or "make images" in r for r in runs("deploy"))
    assert runs("destroy") == [f"make preview-destroy PR={pr}"]
    assert runs("expire") == ["make previews-destroy-expired"]
    # Least privilege: only the deploy writes (its one PR comment); nothing writes to the repository.
    assert jobs["deploy"]["permissions"] == {"contents": "read", "id-token": "write", "pull-requests": "write"}
    for name in ("images", "destroy", "expire"):
        assert jobs[name]["permissions"] == {"contents": "read", "id-token": "write"}
