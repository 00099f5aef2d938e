"""Least privilege on the AWS side (issue 25, findings 7, 9, 10 and 12): each test states what is
enforced and fails on the output Burrow synthesized before it was."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

from cdktf import TerraformStack
from cdktf import Testing as CdktfTesting

from burrow.addons.velero import schedule
from burrow.cluster.edge import registry_names
from burrow.cluster.karpenter import SESSION_MANAGER_POLICY, NodeAutoscaling
from burrow.config.schema import BackupScheduleConfig
from tests.conftest import ENVIRONMENTS

CLOUD = tuple(env for env in ENVIRONMENTS if env != "dev")


def resources(synthesized, stack: str, kind: str) -> dict[str, dict]:
    return synthesized.stacks[stack]["resource"].get(kind, {})


def policy_of(synthesized, stack: str, kind: str, name_part: str) -> dict:
    found = [r for key, r in resources(synthesized, stack, kind).items() if name_part in key]
    assert len(found) == 1, f"{stack}: {len(found)} {kind} named like {name_part}"
    return json.loads(found[0]["policy"])


def denied_unless(policy: dict, action: str, resource: str) -> set[str]:
    """The principals a Deny statement with `ArnNotLike aws:PrincipalArn` leaves `action` on `resource` to."""
    for statement in policy["Statement"]:
        if (
            statement["Effect"] == "Deny"
            and action in statement["Action"]
            and resource in statement.get("Resource", [])
        ):
            names = statement.get("Condition", {}).get("ArnNotLike", {}).get("aws:PrincipalArn")
            if names:
                return set(names)
    raise AssertionError(f"nothing denies {action} on {resource} to the other principals")


# Finding 7: external-dns may change only Burrow's names in the zone.


def test_external_dns_changes_only_burrows_names_and_their_registry_records(synthesized):
    stacks = [
        name
        for name, stack in synthesized.stacks.items()
        if any("dns-policy" in key for key in stack.get("resource", {}).get("aws_iam_role_policy", {}))
    ]
    assert "prod-cluster" in stacks and "prod-us-east-1-cluster" in stacks
    for stack in stacks:
        document = policy_of(synthesized, stack, "aws_iam_role_policy", "dns-policy")
        changes = [s for s in document["Statement"] if "route53:ChangeResourceRecordSets" in s["Action"]]
        assert len(changes) == 1, stack
        condition = changes[0]["Condition"]["ForAllValues:StringEquals"]
        names = condition["route53:ChangeResourceRecordSetsNormalizedRecordNames"]
        assert condition["route53:ChangeResourceRecordSetsRecordTypes"] == ["A", "AAAA", "CNAME", "TXT"]
        region_names = [n for n in names if not n.startswith(("a-", "aaaa-", "cname-"))]
        assert region_names and all(re.match(r"^(rabbitmq\.)?[a-z]{2}-[a-z]+-[0-9]\.", n) for n in region_names), names
        assert all(name == name.lower() and not name.endswith(".") for name in names)
        for name in region_names:
            assert set(registry_names(name)) <= set(names)
    prod = policy_of(synthesized, "prod-cluster", "aws_iam_role_policy", "dns-policy")
    assert any(
        n.startswith("rabbitmq.")
        for s in prod["Statement"]
        for n in s.get("Condition", {})
        .get("ForAllValues:StringEquals", {})
        .get("route53:ChangeResourceRecordSetsNormalizedRecordNames", [])
    ), "prod federates: its broker's name"


def test_registry_names_follow_external_dns_0_21():
    # registry/mapper: the lower-cased record type and a dash before the first label, no prefix or suffix.
    assert registry_names("eu-west-1.publish.example.com") == [
        "a-eu-west-1.publish.example.com",
        "aaaa-eu-west-1.publish.example.com",
        "cname-eu-west-1.publish.example.com",
    ]


# Finding 9: no Secret is backed up; only Velero and the managers reach the bucket and its key.


def test_backup_schedules_exclude_secrets():
    config = BackupScheduleConfig(cron="0 3 * * *", retention_days=7)
    assert schedule("daily", config, "burrow-qa")["spec"]["template"]["excludedResources"] == ["secrets"]


def test_backup_bucket_and_key_admit_velero_and_the_managers_only(synthesized):
    for env in CLOUD:
        stack = f"{env}-common"
        bucket_policy = policy_of(synthesized, stack, "aws_s3_bucket_policy", "backups")
        bucket = bucket_policy["Statement"][0]["Resource"][0]
        account = bucket.rsplit("-", 1)[1]
        velero = f"arn:aws:iam::{account}:role/burrow-{env}-velero"
        assert denied_unless(bucket_policy, "s3:GetObject*", f"{bucket}/*") == {velero}
        assert denied_unless(bucket_policy, "s3:*", f"{bucket}/*") == {
            velero,
            f"arn:aws:iam::{account}:role/burrow-{env}-deploy",
            f"arn:aws:iam::{account}:role/burrow-admin",
            f"arn:aws:iam::{account}:root",
        }
        key = policy_of(synthesized, stack, "aws_kms_key", "backups")
        assert "kms:*" not in json.dumps(key), "the key must not delegate to the account's IAM policies"
        users = [s for s in key["Statement"] if "kms:Decrypt" in s["Action"]]
        assert [s["Condition"]["ArnLike"]["aws:PrincipalArn"] for s in users] == [[velero]]


# Finding 10: the state bucket and its own key admit the deployers, planners and previews only.


def test_state_bucket_is_under_its_own_key_and_admits_only_deploy_plan_and_preview_roles(synthesized):
    for env in CLOUD:
        stack = f"{env}-common"
        bucket = f"arn:aws:s3:::burrow-{env}-tfstate"
        state = policy_of(synthesized, stack, "aws_s3_bucket_policy", "state")
        account = json.dumps(state).split("arn:aws:iam::")[1][:12]
        role = f"arn:aws:iam::{account}:role/burrow-"
        # Burrow's delivery roles (DeliveryRoles) and the account's administrators
        expected = {f"{role}{env}-deploy", f"{role}admin", f"{role}{env}-plan", f"arn:aws:iam::{account}:root"}
        if env == "qa":
            expected.add(f"{role}{env}-previews")
        assert denied_unless(state, "s3:*", f"{bucket}/*") == expected
        encryption = [
            r
            for k, r in resources(synthesized, stack, "aws_s3_bucket_server_side_encryption_configuration").items()
            if k.startswith("state")
        ]
        assert "aws_kms_key.state-key" in json.dumps(encryption)
        key = policy_of(synthesized, stack, "aws_kms_key", "state-key")
        assert "kms:*" not in json.dumps(key)
        backend = synthesized.stacks[stack]["terraform"]["backend"]["s3"]
        assert backend["kms_key_id"].endswith(f":{account}:alias/burrow-{env}-tfstate")


def test_the_plan_role_writes_only_lock_files_and_previews_only_their_prefix(synthesized):
    state = policy_of(synthesized, "qa-common", "aws_s3_bucket_policy", "state")
    by_sid = {s["Sid"]: s for s in state["Statement"]}
    plan = by_sid["PlannersWriteOnlyLocks"]
    assert plan["NotResource"] == ["arn:aws:s3:::burrow-qa-tfstate/*.tflock"] and "s3:PutObject" in plan["Action"]
    writes = by_sid["PreviewsWriteOnlyTheirPrefix"]
    assert writes["NotResource"] == ["arn:aws:s3:::burrow-qa-tfstate/qa/previews/*"]
    reads = by_sid["PreviewsReadOnlyTheirPrefix"]
    assert set(reads["NotResource"]) == {
        "arn:aws:s3:::burrow-qa-tfstate/qa/previews/*",
        "arn:aws:s3:::burrow-qa-tfstate/qa/cluster.tfstate",
    }
    prod = {s["Sid"] for s in policy_of(synthesized, "prod-common", "aws_s3_bucket_policy", "state")["Statement"]}
    assert not any(sid.startswith("Previews") for sid in prod), "prod hosts no previews"


# Finding 12: no Session Manager on Karpenter's nodes unless configured.


def _node_policies(session_manager: bool) -> set[str]:
    stack = TerraformStack(CdktfTesting.app(), "karpenter")
    cluster = SimpleNamespace(
        name="burrow-test",
        issuer="https://oidc.example",
        oidc_provider=SimpleNamespace(arn="arn:aws:iam::1:oidc"),
        cluster=SimpleNamespace(name="burrow-test", vpc_config=SimpleNamespace(cluster_security_group_id="sg-1")),
    )
    NodeAutoscaling(
        stack,
        "karpenter",
        cluster=cluster,
        region="eu-west-1",
        account_id="123456789012",
        session_manager=session_manager,
    )
    attachments = json.loads(CdktfTesting.synth(stack))["resource"]["aws_iam_role_policy_attachment"].values()
    return {a["policy_arn"].rsplit("/", 1)[1] for a in attachments}


def test_karpenter_nodes_get_session_manager_only_when_configured(synthesized):
    for stack, document in synthesized.stacks.items():
        attached = json.dumps(document.get("resource", {}).get("aws_iam_role_policy_attachment", {}))
        assert SESSION_MANAGER_POLICY not in attached, stack
    assert SESSION_MANAGER_POLICY not in _node_policies(False)
    assert SESSION_MANAGER_POLICY in _node_policies(True)
