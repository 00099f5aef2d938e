"""The delivery roles: their trust in the synthesized stacks matches docs/delivery-security.md's
table, and every workflow job that assumes a role has an OIDC subject that role trusts."""

from __future__ import annotations

import json
import re

import pytest

from burrow.config.loader import load_environment
from tests.delivery.test_workflows import WORKFLOWS, load
from tests.support.services import ROOT

DOC = ROOT / "docs" / "delivery-security.md"
ISSUER = "token.actions.githubusercontent.com"
CLOUD = ("qa", "uat", "preprod", "prod")


def role_table() -> dict[str, dict]:
    """The doc's role table by kind (`deploy`, …): its GitHub variable and subject templates."""
    lines = DOC.read_text().split("## The roles", 1)[1].splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| role |"))
    rows = {}
    for line in lines[header + 2 :]:
        if not line.startswith("|"):
            break
        role, variable, _, subjects, _ = (cell.strip() for cell in line.strip("|").split(" | "))
        kind = re.match(r"`burrow-<env>-(\w+)`", role).group(1)
        rows[kind] = {
            "variable": re.match(r"`(\w+)`", variable).group(1),
            "subjects": re.findall(r"`(repo:[^`]+)`", subjects),
        }
    return rows


def trust_subjects(stack: dict) -> dict[str, list[str]]:
    """Role name → the OIDC subjects its trust policy admits, for roles trusting GitHub's provider."""
    found = {}
    for role in stack["resource"].get("aws_iam_role", {}).values():
        if not role["assume_role_policy"].startswith("{"):
            continue  # a data source's document (the EKS roles): trusts a service or the cluster's provider
        (statement,) = json.loads(role["assume_role_policy"])["Statement"]
        if not statement["Principal"].get("Federated", "").endswith(f"oidc-provider/{ISSUER}"):
            continue
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Condition"] == {
            "StringEquals": {
                f"{ISSUER}:aud": "sts.amazonaws.com",
                f"{ISSUER}:sub": statement["Condition"]["StringEquals"][f"{ISSUER}:sub"],
            }
        }
        found[role["name"]] = statement["Condition"]["StringEquals"][f"{ISSUER}:sub"]
    return found


def test_the_table_names_every_role_once():
    assert sorted(role_table()) == ["deploy", "images", "plan", "previews"]


@pytest.mark.parametrize("env", CLOUD)
def test_role_trust_in_the_synthesized_stacks_matches_the_table(synthesized, env):
    config = load_environment(env, ROOT / "environments")
    repository = config.aws.github_repository
    table = role_table()
    expected = {
        f"burrow-{env}-{kind}": [s.replace("<owner>/<repo>", repository).replace("<env>", env) for s in row["subjects"]]
        for kind, row in table.items()
        if kind != "previews" or config.previews.enabled
    }
    assert trust_subjects(synthesized.stack(f"{env}-common")) == expected
    # No other stack of the environment trusts GitHub (regions other than the primary included).
    for name, stack in synthesized.stacks.items():
        if name.startswith(f"{env}-") and name != f"{env}-common":
            assert trust_subjects(stack) == {}, name


def test_no_role_trusts_a_pull_request_or_any_branch(synthesized):
    for name, stack in synthesized.stacks.items():
        for role, subjects in trust_subjects(stack).items():
            for subject in subjects:
                assert "*" not in subject and ":pull_request" not in subject, f"{name} {role}: {subject}"
                assert re.fullmatch(r"repo:[\w.-]+/[\w.-]+:(environment:[\w-]+|ref:refs/heads/main)", subject), subject


def test_the_deploy_role_cannot_change_the_delivery_roles(synthesized):
    stack = synthesized.stack("prod-common")
    (policy,) = [
        json.loads(p["policy"]) for p in stack["resource"]["aws_iam_role_policy"].values() if p["name"] == "deploy"
    ]
    (deny,) = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert deny["NotAction"] == ["iam:Get*", "iam:List*"]
    assert sorted(deny["Resource"]) == sorted(
        f"arn:aws:iam::345678901234:role/burrow-prod-{kind}" for kind in ("deploy", "plan", "images", "previews")
    )
    assert all(s["Action"] != "*" for s in policy["Statement"] if s["Effect"] == "Allow")


def test_the_plan_role_reads_no_secret_and_no_other_bucket(synthesized):
    stack = synthesized.stack("prod-common")
    (policy,) = [
        json.loads(p["policy"]) for p in stack["resource"]["aws_iam_role_policy"].values() if p["name"] == "plan"
    ]
    actions = [a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]
    assert "secretsmanager:GetSecretValue" not in actions and not any(a.endswith(":*") for a in actions)
    (read,) = [s for s in policy["Statement"] if "s3:GetObject" in s["Action"]]
    assert read["Resource"] == "arn:aws:s3:::burrow-prod-tfstate/prod/*"


def job_subject(workflow: dict, job: dict) -> str:
    """The `sub` context of a job's OIDC token: its GitHub environment if it has one, else the ref."""
    if "environment" in job:
        return f"environment:{job['environment']}"
    if workflow["on"] == {"push": {"branches": ["main"]}}:
        return "ref:refs/heads/main"
    return "pull_request" if "pull_request" in workflow["on"] else "unknown"


def test_every_job_assuming_a_role_has_a_subject_the_role_trusts():
    table = {row["variable"]: row["subjects"] for row in role_table().values()}
    assumed = set()
    for path in WORKFLOWS:
        workflow = load(path)
        for name, job in workflow["jobs"].items():
            for step in job.get("steps", []):
                if not step.get("uses", "").startswith("aws-actions/configure-aws-credentials@"):
                    continue
                variable = re.fullmatch(r"\$\{\{ vars\.(\w+) \}\}", step["with"]["role-to-assume"]).group(1)
                assumed.add(variable)
                context = job_subject(workflow, job)
                templates = [s.split(":", 2)[2] for s in table[variable]]
                allowed = {t.replace("<env>", env) for t in templates for env in CLOUD}
                assert context in allowed, f"{path.name} {name}: {variable} does not trust {context}"
                assert job["permissions"].get("id-token") == "write"
    assert assumed == set(table)


def test_a_malformed_repository_names_file_key_and_value(tmp_path):
    from burrow.errors import ConfigError

    envs = tmp_path / "environments"
    envs.mkdir()
    (envs / "default.yaml").write_text((ROOT / "environments" / "default.yaml").read_text())
    (envs / "qa.yaml").write_text(
        "tier: staging\nstate: {backend: s3, bucket: burrow-qa-tfstate}\n"
        "aws: {account_id: '210987654321', github_repository: burrow}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_environment("qa", envs)
    assert f"{envs / 'qa.yaml'}: aws.github_repository = 'burrow'" in str(caught.value)


def test_the_construct_refuses_a_repository_that_is_not_owner_slash_name():
    from cdktf import App, TerraformStack

    from burrow.common.delivery import DeliveryRoles
    from burrow.errors import PropsError

    stack = TerraformStack(App(), "roles")
    props = {
        "repository": "burrow-dev/burrow:ref:refs/heads/*",
        "name": "burrow-qa",
        "environment": "qa",
        "account_id": "210987654321",
        "state_bucket": "burrow-qa-tfstate",
        "state_prefix": "qa",
    }
    with pytest.raises(PropsError, match="roles/delivery: repository='burrow-dev/burrow:ref:refs/heads/\\*'"):
        DeliveryRoles(stack, "delivery", props)
    assert stack.node.try_find_child("delivery") is None  # refused before it joined the tree
