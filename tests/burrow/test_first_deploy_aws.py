"""AWS-side prerequisites and ownership of a first deploy: the ACM validation record several regions
share, the EC2 Spot service-linked role, and where prod's backups live (docs/iam.md)."""

from __future__ import annotations

import re

import pytest
import yaml

from burrow.config.loader import load_environment
from tests.support.services import ROOT

PAGE = ROOT / "docs" / "iam.md"


def validation_domains(stack: dict, names: list[str]) -> set[str]:
    """The certificate names whose DNS validation record `stack` creates (its for_each filter)."""
    records = [r for r in stack["resource"].get("aws_route53_record", {}).values() if r.get("allow_overwrite")]
    if not records:
        return set()
    [record] = records
    excluded = set(re.findall(r'option\.domain_name != "([^"]+)"', record["for_each"]))
    return set(names) - excluded


def test_each_validation_record_has_exactly_one_owner(synthesized):
    """Every region's certificate names the public host, whose ACM validation record is the same in
    every region of the account: exactly one stack (the primary region's) may own it, or destroying
    one region deletes the record another region's renewal needs."""
    env = load_environment("prod", ROOT / "environments")
    assert env.ingress.enabled and len(env.region_names) > 1
    host = env.ingress.host
    owners: dict[str, list[str]] = {}
    for view in env.regional():
        names = [host, f"{view.aws.region}.{host}"]
        for name in validation_domains(synthesized.stack(f"{view.stack_prefix}-cluster"), names):
            owners.setdefault(name, []).append(view.stack_prefix)
    assert owners[host] == ["prod"], owners
    assert all(len(stacks) == 1 for stacks in owners.values()), owners
    for view in env.regional():  # and every region's validation still waits for all of its records
        [validation] = synthesized.stack(f"{view.stack_prefix}-cluster")["resource"][
            "aws_acm_certificate_validation"
        ].values()
        assert "domain_validation_options" in validation["validation_record_fqdns"]


SPOT_ROLE = "AWSServiceRoleForEC2Spot"


def test_spot_prerequisite_names_every_environment_that_launches_spot():
    """Burrow does not create the account-wide Spot service-linked role (see docs/iam.md); the page
    lists exactly the environments whose Karpenter may launch Spot."""
    spot = []
    for path in sorted((ROOT / "environments").glob("*.yaml")):
        if path.stem == "default":
            continue
        env = load_environment(path.stem, ROOT / "environments")
        if env.karpenter is not None and "spot" in env.karpenter.capacity_types:
            spot.append(env.name)
    assert spot, "no environment launches Spot: the prerequisite section is obsolete"
    section = PAGE.read_text().split(f"### {SPOT_ROLE}", 1)[1].split("\n## ", 1)[0]
    listed = re.search(r"Environments that launch Spot today: (.+)\.", section)
    assert listed, f"docs/iam.md: the {SPOT_ROLE} section does not list the environments"
    assert sorted(re.findall(r"`(\w+)`", listed.group(1))) == spot


@pytest.mark.parametrize("region_stack", ["prod-common", "prod-us-east-1-common"])
def test_each_prod_region_keeps_its_backups_in_a_bucket_of_its_own(synthesized, region_stack):
    buckets = [
        b["bucket"]
        for b in synthesized.stack(region_stack)["resource"]["aws_s3_bucket"].values()
        if "backups" in b["bucket"]
    ]
    assert buckets == [f"burrow-{region_stack.removesuffix('-common')}-backups-345678901234"]


def test_the_replication_skip_states_why_prod_backups_stay_in_their_region():
    reason = yaml.safe_load((ROOT / "tests" / "checkov" / "skips.yaml").read_text())["terraform_json"]["CKV_AWS_144"]
    assert "us-east-1" in reason and "EBS snapshots" in reason and "docs/iam.md" in reason


def test_certificate_validation_waits_for_the_documented_time(synthesized):
    """A zone <env>-global just created resolves only after delegation: the wait is bounded and
    docs/iam.md says how long and what to do when it runs out."""
    from burrow.cluster.edge import VALIDATION_TIMEOUT

    for name in ("prod-cluster", "prod-us-east-1-cluster"):
        [validation] = synthesized.stack(name)["resource"]["aws_acm_certificate_validation"].values()
        assert validation["timeouts"] == {"create": VALIDATION_TIMEOUT}
    assert VALIDATION_TIMEOUT == "60m" and "for up to an hour" in PAGE.read_text()
    outputs = synthesized.stack("prod-global")["output"]
    assert "name-servers" in outputs


def test_spot_environments_check_for_the_service_linked_role(synthesized):
    from burrow.cluster.karpenter import SPOT_ROLE_PATH

    for name, spot in (("qa-cluster", True), ("uat-cluster", True), ("prod-cluster", False)):
        checks = synthesized.stack(name).get("data", {}).get("aws_iam_roles", {}).values()
        assert len(checks) == int(spot), name
        for key, check in synthesized.stack(name).get("data", {}).get("aws_iam_roles", {}).items():
            assert check["path_prefix"] == SPOT_ROLE_PATH
            [role] = [
                r
                for r in synthesized.stack(name)["resource"]["aws_iam_role"].values()
                if r["name"].endswith("-karpenter")
            ]
            [condition] = role["lifecycle"]["precondition"]
            assert condition["condition"] == f"${{length(data.aws_iam_roles.{key}.names) > 0}}"
            assert (
                "aws iam create-service-linked-role --aws-service-name spot.amazonaws.com" in condition["error_message"]
            )


# --- who may use the cluster API (EKS access entries) ----------------------------------------------

DEPLOY_ROLE = "arn:aws:iam::210987654321:role/burrow-qa-deploy"
OPERATOR = "arn:aws:iam::210987654321:role/operators"


def eks_of(config) -> dict:
    """The Terraform JSON of one environment's EKS cluster construct, alone in a stack."""
    import json

    from cdktf import TerraformStack, Testing
    from cdktf_cdktf_provider_aws.provider import AwsProvider

    from burrow.cluster.eks import EksCluster
    from burrow.stacks.aws import cluster_admins

    stack = TerraformStack(Testing.app(), "eks")
    AwsProvider(stack, "aws", region="eu-west-1")
    eks = config.cluster.eks
    EksCluster(
        stack,
        "eks",
        {
            "name": "burrow-qa",
            "kubernetes_version": config.kubernetes.version,
            "region": "eu-west-1",
            "log_types": eks.log_types,
            "node_groups": eks.node_groups,
            "subnet_ids": ["subnet-a", "subnet-b"],
            "admins": cluster_admins(config),
        },
    )
    return json.loads(Testing.synth(stack))


def with_admins(config, admins: list[str], role_arn: str | None = None):
    eks = config.cluster.eks.model_copy(update={"admin_principals": admins})
    return config.model_copy(
        update={
            "cluster": config.cluster.model_copy(update={"eks": eks}),
            "aws": config.aws.model_copy(update={"role_arn": role_arn}),
        }
    )


def test_the_cluster_creator_is_admin_explicitly_when_nobody_is_named():
    """With `authentication_mode: API` only access entries admit anyone. AWS provider 5.100 sends
    `bootstrap_cluster_creator_admin_permissions = false` when the flag is left out of `access_config`,
    which would leave the creating identity (a laptop, CI's deploy role) without access."""
    resources = eks_of(load_environment("qa", ROOT / "environments"))["resource"]
    [cluster] = resources["aws_eks_cluster"].values()
    assert cluster["access_config"] == {
        "authentication_mode": "API",
        "bootstrap_cluster_creator_admin_permissions": True,
    }
    assert "aws_eks_access_policy_association" not in resources


def test_named_admins_get_access_entries_with_cluster_admin_and_nobody_implicitly():
    config = with_admins(
        load_environment("qa", ROOT / "environments"),
        [DEPLOY_ROLE, OPERATOR],
        role_arn="arn:aws:iam::210987654321:role/terraform",
    )
    resources = eks_of(config)["resource"]
    [cluster] = resources["aws_eks_cluster"].values()
    assert cluster["access_config"]["bootstrap_cluster_creator_admin_permissions"] is False
    entries = {e["principal_arn"]: e for e in resources["aws_eks_access_entry"].values()}
    assert set(entries) == {"arn:aws:iam::210987654321:role/terraform", DEPLOY_ROLE, OPERATOR}
    assert all(e["type"] == "STANDARD" for e in entries.values())
    policies = resources["aws_eks_access_policy_association"].values()
    assert (
        sorted(p["policy_arn"] for p in policies)
        == ["arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"] * 3
    )
    assert all(p["access_scope"] == {"type": "cluster"} for p in policies)
    # each association waits for its entry (EKS refuses a policy for a principal without one)
    assert all(p["principal_arn"].startswith("${aws_eks_access_entry.") for p in policies)


def test_an_admin_principal_that_is_not_an_iam_role_or_user_is_refused(tmp_path):
    from burrow.config.loader import ConfigError

    env_dir = tmp_path / "environments"
    env_dir.mkdir()
    for name in ("default", "qa"):
        (env_dir / f"{name}.yaml").write_text((ROOT / "environments" / f"{name}.yaml").read_text())
    qa = env_dir / "qa.yaml"
    qa.write_text(
        qa.read_text().replace(
            "  eks:\n", '  eks:\n    admin_principals: ["arn:aws:sts::210987654321:assumed-role/x/y"]\n', 1
        )
    )
    with pytest.raises(ConfigError, match="admin_principals"):
        load_environment("qa", env_dir)
