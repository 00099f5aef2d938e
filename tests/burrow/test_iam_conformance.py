"""Burrow's controller IAM policies against the upstream references at the pinned versions
(burrow_tools.iam_conformance), and the AWS-side pieces those controllers need."""

from __future__ import annotations

import json

import pytest

from burrow_tools.iam_conformance import (
    CONTROLLERS,
    Declared,
    Grant,
    UpstreamMissing,
    burrow_grants,
    burrow_policy,
    check,
    check_all,
    compare,
    declared_markdown,
    karpenter_interruption_events,
    karpenter_node_policies,
    main,
    upstream_dir,
)
from burrow_tools.iam_narrowings import DECLARED, NODE_POLICIES_ON_REQUEST
from tests.support.services import ROOT

#: Every reference checked: each controller at its pinned version (Karpenter 1.14.1).
KARPENTER_VERSIONS = ("1.14.1",)
CHECKS = [(name, spec.pinned) for name, spec in CONTROLLERS.items()] + [
    ("karpenter", version) for version in KARPENTER_VERSIONS if version != CONTROLLERS["karpenter"].pinned
]


@pytest.fixture(scope="module")
def upstream():
    return upstream_dir(ROOT)  # fails (not skips) with the path and README when the data is missing


def stacks_with(synthesized, controller: str) -> list[str]:
    return [name for name in synthesized.stacks if burrow_policy(synthesized.stacks, name, controller)]


def test_missing_upstream_data_fails_with_the_path(tmp_path):
    with pytest.raises(UpstreamMissing, match=r"upstream/iam does not exist.*README"):
        upstream_dir(tmp_path / "repo")


def test_the_pinned_karpenter_is_among_the_checked_versions():
    assert CONTROLLERS["karpenter"].pinned in KARPENTER_VERSIONS


@pytest.mark.parametrize(("controller", "version"), CHECKS)
def test_policy_conforms_to_the_upstream_reference(synthesized, upstream, controller, version):
    stacks = stacks_with(synthesized, controller)
    assert stacks, f"no synthesized stack has {controller}'s policy"
    for stack in stacks:
        result = check(controller, version, synthesized.stacks, stack, upstream)
        print(result.summary())
        assert result.ok, "\n".join(result.problems())


def test_every_declared_difference_is_in_docs():
    page = (ROOT / "docs" / "iam.md").read_text()
    for controller in {row.controller for row in DECLARED}:
        assert declared_markdown(DECLARED, controller) in page, f"docs/iam.md lacks {controller}'s table"


def test_every_declared_difference_has_a_reason_and_no_broadening():
    for row in DECLARED:
        assert row.kind in ("narrowed", "dropped", "addition") and len(row.reason) > 40, row


# -- the checker itself -----------------------------------------------------------------------

TAGGED = frozenset({("Null", "aws:ResourceTag/x", frozenset({"false"}))})


def test_a_broader_grant_is_an_error_that_cannot_be_declared():
    [finding] = compare("c", [Grant("ec2:DeleteSecurityGroup", "*", TAGGED)], [Grant("ec2:DeleteSecurityGroup", "*")])
    assert finding.kind == "broader" and "narrow Burrow's policy" in finding.message()


def test_extra_conditions_and_fewer_values_are_narrower():
    reference = Grant(
        "iam:PassRole",
        "{aws_iam_role.arn}",
        frozenset({("StringEquals", "iam:PassedToService", frozenset({"a", "b"}))}),
    )
    assert reference.covers(
        Grant(
            "iam:PassRole",
            "{aws_iam_role.arn}",
            frozenset(
                {
                    ("StringEquals", "iam:PassedToService", frozenset({"a"})),
                    ("StringEquals", "aws:RequestedRegion", frozenset({"r"})),
                }
            ),
        )
    )
    assert not reference.covers(Grant("iam:PassRole", "{aws_iam_role.arn}"))
    assert Grant("x:Y", "arn:aws:ec2:*:*:security-group/*").covers(
        Grant("x:Y", "arn:aws:ec2:{region}:*:security-group/*")
    )
    assert not Grant("x:Y", "arn:aws:ec2:{region}:*:instance/*").covers(Grant("x:Y", "*"))


def test_an_undeclared_difference_names_action_and_both_resources(synthesized, upstream):
    stack = stacks_with(synthesized, "external-dns")[0]
    result = check("external-dns", CONTROLLERS["external-dns"].pinned, synthesized.stacks, stack, upstream, declared=())
    assert not result.ok
    assert any(
        "route53:ChangeResourceRecordSets is narrowed and not declared" in problem
        and "arn:aws:route53:::hostedzone/*" in problem
        and "hostedzone/{aws_route53_zone.zone_id}" in problem
        for problem in result.problems()
    )


def test_a_declared_row_that_matches_nothing_is_reported(synthesized, upstream):
    stack = stacks_with(synthesized, "karpenter")[0]
    stale = Declared("karpenter", "dropped", ("ec2:DescribeInstanceStatus",), ("*",), (), "a reason long enough x")
    result = check("karpenter", CONTROLLERS["karpenter"].pinned, synthesized.stacks, stack, upstream, declared=(stale,))
    assert result.stale == [stale] and "matches no difference any more" in result.problems()[0]


# -- what the controllers need that a narrowing could take away ------------------------------


def test_load_balancer_controller_may_open_untagged_security_groups_of_its_vpc(synthesized):
    """The cluster security group is not tagged `elbv2.k8s.aws/cluster`: ingress to it must not
    depend on that tag, only on the VPC."""
    for stack in stacks_with(synthesized, "aws-load-balancer-controller"):
        grants = burrow_grants(synthesized.stacks, stack, "aws-load-balancer-controller")
        for action in ("ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"):
            untagged = [
                g
                for g in grants
                if g.action == action and not any("elbv2.k8s.aws/cluster" in key for _, key, _ in g.conditions)
            ]
            assert untagged, f"{stack}: {action} only on security groups the controller tagged"
            assert all(
                ("ArnLike", "ec2:Vpc", frozenset({"arn:aws:ec2:{region}:*:vpc/{aws_vpc.id}"})) in g.conditions
                for g in untagged
            ), f"{stack}: {action} is not limited to the cluster's VPC"


def test_karpenter_may_read_instance_status(synthesized):
    for stack in stacks_with(synthesized, "karpenter"):
        actions = {g.action for g in burrow_grants(synthesized.stacks, stack, "karpenter")}
        assert {"ec2:DescribeInstanceStatus", "arc-zonal-shift:GetManagedResource"} <= actions, stack


def _event_patterns(stack: dict) -> list[dict]:
    return [
        json.loads(rule["event_pattern"])
        for rule in stack["resource"]["aws_cloudwatch_event_rule"].values()
        if "karpenter" in rule["name"]
    ]


@pytest.mark.parametrize("version", KARPENTER_VERSIONS)
def test_karpenter_interruption_rules_match_the_reference(synthesized, upstream, version):
    expected = sorted(json.dumps(p, sort_keys=True) for p in karpenter_interruption_events(version, upstream))
    for stack in stacks_with(synthesized, "karpenter"):
        assert sorted(json.dumps(p, sort_keys=True) for p in _event_patterns(synthesized.stacks[stack])) == expected


@pytest.mark.parametrize("version", KARPENTER_VERSIONS)
def test_karpenter_node_role_has_the_reference_managed_policies_but_those_on_request(synthesized, upstream, version):
    assert set(NODE_POLICIES_ON_REQUEST) <= karpenter_node_policies(version, upstream)
    expected = karpenter_node_policies(version, upstream) - set(NODE_POLICIES_ON_REQUEST)
    for stack in stacks_with(synthesized, "karpenter"):
        attachments = synthesized.stacks[stack]["resource"]["aws_iam_role_policy_attachment"].values()
        attached = {a["policy_arn"].rsplit("/", 1)[1] for a in attachments if "karpenter_node-role" in a["role"]}
        assert attached == expected, stack


def test_check_all_covers_every_role_policy_at_the_pinned_versions(synthesized, upstream):
    results = check_all(synthesized.stacks, upstream)
    assert all(result.ok for result in results)
    assert {(r.controller, r.stack) for r in results} == {
        (controller, stack) for controller in CONTROLLERS for stack in stacks_with(synthesized, controller)
    }


def test_the_command_refuses_a_folder_without_stacks(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "no synthesized stacks" in capsys.readouterr().out
