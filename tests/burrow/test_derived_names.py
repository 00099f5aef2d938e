"""Names derived from a cluster's name fit AWS's limits for every cluster name `EksCluster`
accepts: a long environment name in a long region name used to pass synthesis and then fail the
apply (EventBridge refuses rule names over 64 characters, IAM role names over 64)."""

from __future__ import annotations

import pytest

from burrow.names import EVENT_RULE_NAME_MAX, IAM_ROLE_NAME_MAX, SQS_QUEUE_NAME_MAX, fitted
from tests.burrow.test_aws_construct_props import ACCOUNT, MAPPINGS, Aws

LIMITS = {"aws_iam_role": IAM_ROLE_NAME_MAX, "aws_cloudwatch_event_rule": EVENT_RULE_NAME_MAX,
          "aws_sqs_queue": SQS_QUEUE_NAME_MAX}


def derived_names(cluster_name: str) -> dict[str, list[str]]:
    """Every IAM role, EventBridge rule and SQS queue name the cluster layer's constructs derive
    from a cluster named `cluster_name`."""
    from burrow import BackupStorage, EksCluster, PublicEntry
    from burrow.cluster.backups import BackupAccessRole
    from burrow.cluster.credentials import GeneratedCredentials
    from burrow.cluster.eks import MAX_NAME_LENGTH
    from burrow.cluster.karpenter import NodeAutoscaling

    assert len(cluster_name) <= MAX_NAME_LENGTH
    aws = Aws()
    cluster = EksCluster(aws.stack, "eks", {**MAPPINGS["EksCluster"](aws), "name": cluster_name})
    NodeAutoscaling(aws.stack, "karpenter", cluster=cluster, region="eu-west-1", account_id=ACCOUNT, spot=True)
    PublicEntry(aws.stack, "edge", MAPPINGS["PublicEntry"](aws), cluster=cluster, network=aws.network())
    storage = BackupStorage(aws.stack, "backups", MAPPINGS["BackupStorage"](aws))
    BackupAccessRole(aws.stack, "velero", storage=storage, cluster=cluster, region="eu-west-1", account_id=ACCOUNT)
    GeneratedCredentials(aws.stack, "credentials", prefix="burrow/qa", role_prefix=f"{cluster_name}-secrets",
                         account_id=ACCOUNT, region="eu-west-1", cluster=cluster,
                         readers={"burrow-qa": ["rabbitmq"], "monitoring": ["grafana"]})
    synthesized = aws.synth()["resource"]
    return {kind: [r["name"] for r in synthesized.get(kind, {}).values()] for kind in LIMITS}


def test_the_longest_cluster_name_eks_accepts_gives_names_aws_accepts():
    from burrow.cluster.eks import MAX_NAME_LENGTH

    name = "burrow-" + "x" * (MAX_NAME_LENGTH - len("burrow-"))
    names = derived_names(name)
    from burrow.cluster.karpenter import INTERRUPTION_EVENTS

    assert len(names["aws_cloudwatch_event_rule"]) == len(INTERRUPTION_EVENTS) and names["aws_sqs_queue"]
    for kind, limit in LIMITS.items():
        assert all(len(n) <= limit for n in names[kind]), (kind, [n for n in names[kind] if len(n) > limit])
        assert len(set(names[kind])) == len(names[kind]), names[kind]
        assert all(n.startswith("burrow-xxxx") for n in names[kind]), names[kind]
    # the Karpenter rules were the first to overflow: 33 characters of suffix
    assert any(n.endswith("-karpenter-instance-state-change") for n in names["aws_cloudwatch_event_rule"])


def test_names_that_fit_keep_their_plain_form():
    names = derived_names("burrow-qa")
    assert "burrow-qa-karpenter-instance-state-change" in names["aws_cloudwatch_event_rule"]
    assert {"burrow-qa-karpenter", "burrow-qa-karpenter-node", "burrow-qa-load-balancer", "burrow-qa-external-dns",
            "burrow-qa-velero", "burrow-qa-secrets-burrow-qa", "burrow-qa-secrets-monitoring"} <= set(names["aws_iam_role"])
    assert names["aws_sqs_queue"] == ["burrow-qa-karpenter"]


@pytest.mark.parametrize("base", ["burrow-prod-ap-southeast-4", "a" * 40, "b-" * 30])
def test_a_fitted_name_is_unique_per_base_and_within_its_limit(base):
    for suffix, limit in (("-karpenter-instance-state-change", 64), ("-velero", 64), ("-karpenter", 80)):
        name = fitted(base, suffix, limit)
        assert len(name) <= limit and name.endswith(suffix)
        assert name == f"{base}{suffix}" or name != fitted(base + "z", suffix, limit)


def test_a_suffix_that_leaves_no_room_is_refused():
    with pytest.raises(ValueError, match="leaves no room"):
        fitted("burrow", "-" + "s" * 60, 64)


def test_a_hostname_has_one_definition_and_the_public_host_a_tighter_limit():
    """One `Hostname` type (DNS's rule, 253 characters); the public producer's host builds on it,
    with room left for `<region>.` in front (it had its own copy of the pattern before)."""
    from pydantic import TypeAdapter

    import burrow.names
    import burrow.settings
    from burrow.app.settings import IngressConfig
    from burrow.errors import PropsError

    assert burrow.names.Hostname is burrow.settings.Hostname
    long = "a." * 100 + "com"  # 203 characters, a valid name
    assert TypeAdapter(burrow.settings.Hostname).validate_python(long) == long
    with pytest.raises(PropsError, match="host=.* at most 200 characters"):
        IngressConfig(enabled=True, host=long)
    with pytest.raises(PropsError, match="host=.*pattern"):
        IngressConfig(enabled=True, host="Events.example.com")
