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
# The one command besides make targets a workflow may run: the CI entry point every CI machine runs.
CI_RUN = ".ci/run"
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


def test_there_are_five_workflows():
    assert [p.name for p in WORKFLOWS] == ["deploy.yml", "images.yml", "plan.yml", "preview.yml", "pull-request.yml"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_the_github_schema(path):
    assert CHECK_JSONSCHEMA.exists(), "check-jsonschema is not installed (make test installs it)"
    result = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_run_steps_only_call_existing_make_targets(path):
    targets = make_targets()
    for job, step in steps(load(path)):
        if "run" not in step:
            continue
        command = step["run"].strip()
        if command == CI_RUN:
            continue
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
        assert rollout == [
            step
            for region in config.region_names
            for step in (
                f"make deploy ENV={env} REGION={region} RELEASE=release.json",
                f"make smoke ENV={env} REGION={region}",
            )
        ]


def test_deploy_jobs_never_build_images():
    text = (ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    for forbidden in ("make images", "docker", "build-push-action", "buildx"):
        assert forbidden not in text


def github_environments() -> dict[str, dict]:
    return json.loads((ROOT / ".github" / "environments.json").read_text())


def test_preprod_and_prod_need_an_approval_and_the_others_do_not():
    environments = github_environments()
    assert [env for env in environments if env in PROMOTION] == PROMOTION
    for env in PROMOTION:
        approvers = environments[env]["approvers"]
        assert bool(approvers) == (env in ("preprod", "prod")), env
    for env, spec in environments.items():
        assert all(re.fullmatch(r"(team|user):[\w.-]+", a) for a in spec["approvers"]), env
        assert spec["branch"] == "main", f"{env}: only main's workflow files may use it"


def test_plans_and_previews_of_pull_requests_wait_for_a_maintainer():
    environments = github_environments()
    for env in ("plan", "preview"):
        assert environments[env]["approvers"], f"{env} must wait for an approval"
    # Destroying previews runs the base branch's code only: no approval to wait for.
    assert environments["preview-cleanup"]["approvers"] == []


def test_images_are_built_once_scanned_and_recorded_on_main():
    workflow = load(ROOT / ".github" / "workflows" / "images.yml")
    assert workflow["on"] == {"push": {"branches": ["main"]}}
    runs = [s["run"].split()[1] for _, s in steps(workflow) if "run" in s]
    assert runs == ["images", "scan-images", "release"]


def test_pull_requests_run_the_checks():
    workflow = load(ROOT / ".github" / "workflows" / "pull-request.yml")
    runs = [s["run"] for _, s in steps(workflow) if "run" in s]
    fixture = "RELEASE=tests/fixtures/release.json"
    assert runs == [CI_RUN, f"make synth {fixture}", f"make validate {fixture}", "make check-clean"]


def ci_run_commands() -> list[str]:
    return [
        line.strip()
        for line in (ROOT / CI_RUN).read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def test_the_pull_request_suite_gets_its_broker_the_way_ci_run_does():
    """The suite's fault and restart tests need a broker node they may stop and kill, and the
    federation test a local rabbitmq-server: the PR job runs `.ci/run` itself (which installs
    rabbitmq-server, starts a node of its own and runs `make test`), never the suite beside it, and
    no workflow hands the suite another broker (a service container, a RABBITMQ_URL)."""
    commands = ci_run_commands()
    assert any("apt-get install" in c and "rabbitmq-server" in c for c in commands)
    assert any("tests.support.rabbitmq_node start" in c for c in commands)
    assert any("tests.support.rabbitmq_node stop" in c for c in commands)
    assert commands[-1] == "make test"
    # A GitHub runner is not root: every apt-get goes through sudo there.
    assert all('"${as_root[@]}"' in c for c in commands if "apt-get" in c)
    for path in WORKFLOWS:
        workflow = load(path)
        for name, job in workflow["jobs"].items():
            assert "services" not in job, f"{path.name} {name}: the suite starts its own broker (.ci/run)"
            assert "container" not in job, f"{path.name} {name}: .ci/run runs on the runner itself"
            for scope in (
                workflow.get("env", {}),
                job.get("env", {}),
                *(step.get("env", {}) for step in job.get("steps", [])),
            ):
                assert not {"RABBITMQ_URL", "BURROW_RABBITMQ_NODE_HOME"} & set(scope), f"{path.name} {name}"
            runs = [step["run"].strip() for step in job.get("steps", []) if "run" in step]
            assert "make test" not in runs, f"{path.name} {name}: run the suite through {CI_RUN}"
    test_jobs = [
        name
        for name, job in load(ROOT / ".github" / "workflows" / "pull-request.yml")["jobs"].items()
        if any(step.get("run") == CI_RUN for step in job["steps"])
    ]
    assert test_jobs == ["test"]


def test_previews_deploy_on_every_push_and_are_destroyed_on_close_and_expiry():
    workflow = load(ROOT / ".github" / "workflows" / "preview.yml")
    assert workflow["on"]["pull_request_target"]["types"] == ["opened", "synchronize", "reopened", "closed"]
    assert workflow["on"]["schedule"] == [{"cron": "17 * * * *"}]
    # Two pushes to one PR queue behind each other; a deploy or destroy is never cut off halfway.
    assert workflow["concurrency"] == {
        "group": "preview-${{ github.event.pull_request.number || 'expiry' }}",
        "cancel-in-progress": False,
    }
    jobs = workflow["jobs"]
    assert jobs["deploy"]["if"] == "github.event_name == 'pull_request_target' && github.event.action != 'closed'"
    assert jobs["comment"]["needs"] == "deploy"
    assert jobs["destroy"]["if"] == "github.event_name == 'pull_request_target' && github.event.action == 'closed'"
    assert jobs["expire"]["if"] == "github.event_name == 'schedule'"

    def runs(job: str) -> list[str]:
        return [s["run"] for s in jobs[job]["steps"] if "run" in s]

    pr = "${{ github.event.pull_request.number }}"
    sha = "${{ github.event.pull_request.head.sha }}"
    # Built once per push (the approved commit), then deployed with those digests.
    assert [r.split()[1] for r in runs("deploy")] == ["images", "scan-images", "release", "preview", "smoke"]
    assert runs("deploy")[3:] == [
        f"make preview PR={pr} RELEASE=release.json COMMIT={sha}",
        f"make smoke ENV=qa PR={pr}",
    ]
    assert runs("comment") == ["make pr-comment ENV=preview FILE=preview.md"]
    assert runs("destroy") == [f"make preview-destroy PR={pr}"]
    assert runs("expire") == ["make previews-destroy-expired"]
    # The PR's code runs only in `deploy`, after an approval; the comment job writes, holding no credential.
    assert jobs["deploy"]["environment"] == "preview"
    assert jobs["deploy"]["permissions"] == {"contents": "read", "id-token": "write"}
    assert jobs["comment"]["permissions"] == {"contents": "read", "pull-requests": "write"}
    for name in ("destroy", "expire"):
        assert jobs[name]["environment"] == "preview-cleanup"
        assert jobs[name]["permissions"] == {"contents": "read", "id-token": "write"}


def test_plans_of_pull_requests_run_the_base_branch_code_on_the_pr_environment_files():
    workflow = load(ROOT / ".github" / "workflows" / "plan.yml")
    assert workflow["on"] == {"pull_request_target": {"branches": ["main"], "paths": ["environments/**"]}}
    # A plan takes state locks: a cancelled run would leave them behind.
    assert workflow["concurrency"]["cancel-in-progress"] is False
    job = workflow["jobs"]["diff"]
    assert job["environment"] == "plan"
    checkouts = [step for step in job["steps"] if step.get("uses", "").startswith("actions/checkout@")]
    assert [c["with"]["ref"] for c in checkouts] == [
        "${{ github.event.pull_request.base.sha }}",
        "${{ github.event.pull_request.head.sha }}",
    ]
    assert checkouts[0]["with"].get("path") is None  # the workspace: the base branch's code
    assert checkouts[1]["with"]["path"] == ".cache/pr"
    assert checkouts[1]["with"]["sparse-checkout"] == "environments"
    runs = [s["run"] for s in job["steps"] if "run" in s]
    assert runs == ["make pr-environments PR_DIR=.cache/pr", "make main-release",
                    "make pr-diffs BASE=HEAD RELEASE=release.json"]
    # Credentials come after the PR's files are in place and checked, never before.
    names = [s.get("uses", s.get("run", "")).split("@")[0] for s in job["steps"]]
    assert names.index("make pr-environments PR_DIR=.cache/pr") < names.index("aws-actions/configure-aws-credentials")


#: make targets that synthesize every environment or one named (production only with a release).
SYNTHESIZING = {"synth", "validate", "diff", "deploy", "rehearse", "changed-envs", "pr-diffs"}


def make_calls(run: str) -> list[tuple[str, str]]:
    """(target, the rest of its command line) of every `make` call in a step's script."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"\bmake\s+([\w-]+)([^\n;&|]*)", run)]


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_step_that_synthesizes_passes_a_release(path):
    """A prod or preprod synth without a release file is refused (BURROW_RELEASE): every workflow
    step that synthesizes passes RELEASE=, and plan.yml's file is the one main last recorded."""
    for job, step in steps(load(path)):
        for target, rest in make_calls(step.get("run", "")):
            if target in SYNTHESIZING:
                assert re.search(r"\bRELEASE=\S+", rest), f"{path.name} {job}: make {target}{rest}"
    if path.name == "plan.yml":
        job = load(path)["jobs"]["diff"]
        assert job["permissions"]["actions"] == "read"  # gh run download of main's release artifact
        runs = [s.get("run", "") for s in job["steps"]]
        assert runs.index("make main-release") < runs.index("make pr-diffs BASE=HEAD RELEASE=release.json")


def test_plans_synthesize_both_sides_with_the_release_they_are_given():
    """changed-envs synthesizes the base branch and the pull request's files with the same release
    (from its own worktree, so the path is absolute); pr-diffs refuses to run without one."""
    dry = subprocess.run(["make", "-n", "--no-print-directory", "changed-envs", "BASE=HEAD", "RELEASE=release.json"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    synths = [line for line in dry.splitlines() if "main.py" in line]
    assert len(synths) == 2 and all(f"BURROW_RELEASE={ROOT / 'release.json'} " in line for line in synths), synths
    recipe = (ROOT / "Makefile").read_text().split("\npr-diffs:", 1)[1].split("\n\n", 1)[0]
    assert 'test -n "$(RELEASE)"' in recipe
    assert "changed-envs BASE=$(BASE) RELEASE=$(RELEASE)" in recipe and "diff ENV=$$env RELEASE=$(RELEASE)" in recipe


# --- untrusted code gets nothing ---------------------------------------------------------------
PR_EVENTS = ("pull_request", "pull_request_target")
PR_HEAD = re.compile(r"github\.event\.pull_request\.head\.|github\.head_ref|refs/pull/")
# Fields of the event a pull request's author writes: never interpolated into a command or its env.
ATTACKER_FIELDS = re.compile(
    r"github\.event\.pull_request\.(title|body|head\.ref|head\.label|head\.repo)|github\.head_ref"
    r"|github\.event\.(comment|review|issue)\."
)


def events(workflow: dict) -> set[str]:
    on = workflow["on"]
    return {on} if isinstance(on, str) else set(on)


def is_data_checkout(step: dict) -> bool:
    """A checkout of the PR's environment files into a folder of their own, read as data only."""
    options = step.get("with", {})
    return options.get("sparse-checkout") == "environments" and bool(options.get("path"))


def runs_pull_request_code(workflow: dict, job: dict) -> bool:
    """Does the job run code a pull request's author wrote? Under `pull_request` every job does (the
    workflow file and the checkout are the PR's); under `pull_request_target` a job does when it
    checks out the PR's head (other than its environment files as data) or runs anything after."""
    if "pull_request" in events(workflow):
        return True
    if "pull_request_target" not in events(workflow):
        return False
    return any(
        (
            step.get("uses", "").startswith("actions/checkout@")
            and not is_data_checkout(step)
            and PR_HEAD.search(str(step.get("with", {})))
        )
        or PR_HEAD.search(step.get("run", ""))  # a command that fetches or builds the PR's commit
        for step in job.get("steps", [])
    )


def writes(job: dict) -> set[str]:
    return {scope for scope, level in job.get("permissions", {}).items() if level == "write"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_job_running_pull_request_code_gets_credentials_or_write_tokens(path):
    """Anyone who can push a branch writes a pull request's code: a job running it gets no OIDC
    token (no cloud role), no write scope and no secret, unless a maintainer approves the commit
    first (a GitHub environment with required reviewers)."""
    workflow = load(path)
    approvers = {env: spec["approvers"] for env, spec in github_environments().items()}
    for name, job in workflow["jobs"].items():
        if not runs_pull_request_code(workflow, job):
            continue
        if approvers.get(job.get("environment")):
            continue
        assert not writes(job), f"{path.name} {name} runs pull-request code with {sorted(writes(job))}: write"
        assert "secrets." not in json.dumps(job), f"{path.name} {name} runs pull-request code with a secret"


def test_the_credential_rule_fails_on_a_pull_request_job_with_an_oidc_token():
    """The rule above, on the shape the diff job had: `pull_request`, `id-token: write`, `make pr-diffs`."""
    workflow = {
        "on": {"pull_request": {}},
        "jobs": {
            "diff": {
                "permissions": {"contents": "read", "id-token": "write"},
                "steps": [{"uses": "actions/checkout@x"}, {"run": "make pr-diffs"}],
            }
        },
    }
    job = workflow["jobs"]["diff"]
    assert runs_pull_request_code(workflow, job) and writes(job) == {"id-token"}
    target = {"on": {"pull_request_target": {}}, "jobs": {}}
    head = {"uses": "actions/checkout@x", "with": {"ref": "${{ github.event.pull_request.head.sha }}"}}
    assert runs_pull_request_code(target, {"steps": [head]})
    assert not runs_pull_request_code(
        target, {"steps": [{**head, "with": {**head["with"], "path": ".cache/pr", "sparse-checkout": "environments"}}]}
    )
    assert not runs_pull_request_code(target, {"steps": [{"uses": "actions/checkout@x"}]})
    fetch = {"run": "make build SHA=${{ github.event.pull_request.head.sha }}"}
    assert runs_pull_request_code(target, {"steps": [{"uses": "actions/checkout@x"}, fetch]})


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_pull_request_target_jobs_take_nothing_unsafe_from_the_pull_request(path):
    workflow = load(path)
    for name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            # A branch name, title or body is the author's text: interpolated into a command it runs.
            for text in (step.get("run", ""), json.dumps(step.get("env", {}))):
                assert not ATTACKER_FIELDS.search(text), f"{path.name} {name}: {text}"
            if not step.get("uses", "").startswith("actions/checkout@"):
                continue
            options = step.get("with", {})
            # The token is never left in .git/config for later steps (or the PR's code) to read.
            assert options.get("persist-credentials") is False, f"{path.name} {name}: persist-credentials: false"
            if PR_EVENTS[1] in events(workflow) and PR_HEAD.search(str(options)):
                # The commit that was approved, never the branch, which may move after the approval.
                assert options["ref"] == "${{ github.event.pull_request.head.sha }}", f"{path.name} {name}"


def test_pr_environments_takes_regular_files_and_refuses_links(tmp_path):
    (tmp_path / "Makefile").write_text((ROOT / "Makefile").read_text())
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments" / "qa.yaml").write_text("tier: staging\n")
    pr = tmp_path / ".cache" / "pr" / "environments"
    pr.mkdir(parents=True)
    (pr / "qa.yaml").write_text("tier: development\n")
    (pr / "perf.yaml").write_text("tier: staging\n")
    (pr / "secrets.yaml").symlink_to("/etc/hostname")

    def pr_environments() -> subprocess.CompletedProcess:
        return subprocess.run(
            ["make", "-s", "pr-environments", "PR_DIR=.cache/pr"], cwd=tmp_path, capture_output=True, text=True
        )

    refused = pr_environments()
    assert refused.returncode == 2 and "refused" in refused.stdout and "secrets.yaml" in refused.stdout
    assert (tmp_path / "environments" / "qa.yaml").read_text() == "tier: staging\n"  # nothing taken
    (pr / "secrets.yaml").unlink()
    taken = pr_environments()
    assert taken.returncode == 0, taken.stdout + taken.stderr
    assert sorted(p.name for p in (tmp_path / "environments").iterdir()) == ["perf.yaml", "qa.yaml"]
    assert (tmp_path / "environments" / "qa.yaml").read_text() == "tier: development\n"
    assert not (tmp_path / ".cache" / "pr").exists()


#: Node.js releases in support on 2026-12-02 (the Node.js release schedule; 20 ended on 2026-04-30):
#: the jsii runtime under cdktf names the same two.
SUPPORTED_NODE = {"22": "2027-04-30", "24": "2028-04-30"}


def test_every_workflow_sets_up_a_supported_node_release():
    pinned = [
        (path.name, step["with"]["node-version"])
        for path in WORKFLOWS
        for _, step in steps(load(path))
        if str(step.get("uses", "")).startswith("actions/setup-node@")
    ]
    assert pinned, "the workflows set up Node.js (cdktf-cli and jsii need it)"
    unsupported = [(name, version) for name, version in pinned if str(version) not in SUPPORTED_NODE]
    assert not unsupported, f"end-of-life Node.js in workflows: {unsupported}; use one of {sorted(SUPPORTED_NODE)}"
