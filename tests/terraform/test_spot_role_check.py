"""The EC2 Spot service-linked role check of a Spot environment's cluster stack, run by the real
Terraform and AWS provider against the emulator: the plan stops with Burrow's message in an
account without the role and goes on once the role exists (docs/iam.md)."""

from __future__ import annotations

import json

from burrow.cluster.karpenter import SPOT_ROLE_MISSING
from burrow.stacks.aws import EMULATED_SERVICES
from burrow_tools.terraform.cli import find_mirror
from burrow_tools.terraform.emulator import Emulator
from burrow_tools.terraform.validate import run_terraform, terraform_env


def spot_check_only(stack: dict, endpoint: str) -> dict:
    """The cluster stack's Spot role data source and the precondition on Karpenter's controller role,
    as synthesized, with an AWS provider that talks to the emulator (a stand-in resource carries
    the precondition, so nothing else of the stack is planned)."""
    [(name, data)] = stack["data"]["aws_iam_roles"].items()
    [role] = [r for r in stack["resource"]["aws_iam_role"].values() if r["name"].endswith("-karpenter")]
    provider = {
        "region": stack["provider"]["aws"][0]["region"],
        "access_key": "emulator",
        "secret_key": "emulator",
        "skip_credentials_validation": True,
        "skip_requesting_account_id": True,
        "endpoints": [{service: endpoint for service in EMULATED_SERVICES}],
    }
    data = {key: value for key, value in data.items() if key != "//"}
    return {
        "provider": {"aws": [provider]},
        "data": {"aws_iam_roles": {name: data}},
        "resource": {"terraform_data": {"controller": {"lifecycle": role["lifecycle"]}}},
    }


def test_a_spot_stack_plans_only_in_an_account_with_the_spot_role(synthesized, tmp_path):
    stack = synthesized.stack("qa-cluster")
    emulator = Emulator(stack["provider"]["aws"][0]["allowed_account_ids"][0])
    try:
        (tmp_path / "main.tf.json").write_text(json.dumps(spot_check_only(stack, emulator.url)))
        env = terraform_env(tmp_path, find_mirror())
        init = run_terraform(["init", "-input=false", "-no-color"], tmp_path, env)
        assert init.returncode == 0, init.stderr
        missing = run_terraform(["plan", "-input=false", "-no-color"], tmp_path, env)
        assert missing.returncode != 0
        assert "AWSServiceRoleForEC2Spot" in missing.stderr and "create-service-linked-role" in missing.stderr
        assert " ".join(SPOT_ROLE_MISSING.split()[:6]) in " ".join(missing.stderr.split())
        emulator.client("iam", "eu-west-1").create_service_linked_role(AWSServiceName="spot.amazonaws.com")
        present = run_terraform(["plan", "-input=false", "-no-color"], tmp_path, env)
        assert present.returncode == 0, present.stderr
    finally:
        emulator.close()
