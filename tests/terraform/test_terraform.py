"""A real Terraform: validate the synthesized AWS stacks, and apply/re-plan/destroy them against moto.

These fail, never skip, when Terraform or the mirrored AWS provider is missing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from burrow_tools.terraform.cli import find_mirror, provider_address
from burrow_tools.terraform.emulator import EMULATOR_GAPS, Emulator, apply_gaps, rehearse
from burrow_tools.terraform.validate import registry_mode, validate_all

AWS = "registry.terraform.io/hashicorp/aws"


def test_the_provider_mirror_is_discovered_with_the_aws_provider():
    if registry_mode():
        pytest.skip("this runner installs providers from the public registry (BURROW_TF_REGISTRY=1)")
    mirror = find_mirror()
    assert mirror is not None, "no terraform-provider-* mirror found on this machine"
    assert "5.100.0" in mirror.providers[AWS]
    config = mirror.cli_config()
    assert f'path    = "{mirror.root}"' in config
    assert f'exclude = ["{AWS}"' in config


def test_provider_addresses_expand_like_terraform():
    assert provider_address("aws") == AWS
    assert provider_address("hashicorp/helm") == "registry.terraform.io/hashicorp/helm"
    assert provider_address("example.com/team/thing") == "example.com/team/thing"


def test_every_aws_stack_validates_and_the_rest_are_listed(synthesized):
    results = {r.stack: r for r in validate_all(synthesized.outdir, require_mirror=not registry_mode())}
    aws_stacks = {s for s in synthesized.stacks if s.endswith(("-common", "-cluster", "-global"))}
    if registry_mode():  # every provider installs: every stack is validated
        assert {s for s, r in results.items() if r.status == "valid"} == set(synthesized.stacks)
        return
    assert {s for s, r in results.items() if r.status == "valid"} == aws_stacks
    not_validated = {s for s, r in results.items() if r.status == "not validated"}
    assert not_validated == set(synthesized.stacks) - aws_stacks
    assert all("kubernetes" in results[s].detail for s in not_validated)


def test_validation_reports_an_invalid_stack(synthesized, tmp_path):
    broken = tmp_path / "stacks" / "qa-common"
    broken.mkdir(parents=True)
    config = json.loads((synthesized.outdir / "stacks" / "qa-common" / "cdk.tf.json").read_text())
    next(iter(config["resource"]["aws_vpc"].values()))["cidr_blocks"] = "10.0.0.0/16"  # no such argument
    (broken / "cdk.tf.json").write_text(json.dumps(config, indent=2))
    [result] = validate_all(tmp_path, require_mirror=not registry_mode())
    assert result.status == "invalid"
    assert "cidr_blocks" in result.detail


def test_emulator_gaps_are_named_with_reasons_and_touch_nothing_else(synthesized):
    assert all(gap.reason for gap in EMULATOR_GAPS)
    original = synthesized.stack("prod-cluster")
    config = json.loads(json.dumps(original))
    notes = apply_gaps(config)
    assert any("left out 4 aws_eks_addon" in note for note in notes)
    gap_types = {gap.resource_type for gap in EMULATOR_GAPS}
    for kind, items in original["resource"].items():
        if kind not in gap_types:
            assert config["resource"][kind] == items, kind


@pytest.mark.parametrize("env", ["qa", "prod"])
def test_aws_layers_bootstrap_apply_replan_empty_and_destroy_against_the_emulator(env, capsys, monkeypatch):
    from burrow.config.loader import load_environment
    from tests.support.services import ROOT

    # production synthesizes only with its images pinned: the stand-in release (made-up digests)
    monkeypatch.setenv("BURROW_RELEASE", str(ROOT / "tests" / "fixtures" / "release.json"))
    config = load_environment(env, ROOT / "environments")
    rehearse(env)
    printed = capsys.readouterr().out
    assert f"{env}-common: bootstrap passed" in printed
    assert f"review: {env}-common: no changes: No changes." in printed
    assert re.search(rf"review: {env}-cluster: changes: Plan: \d+ to add, 0 to change, 0 to destroy", printed)
    # prod: the public producer's token and federation's password too, one value each replicated to every region
    # and the federation CA's shell (federation): replicated everywhere, holding no value (the cluster writes it)
    from burrow.cluster.credentials import FEDERATION, FEDERATION_CA, GENERATED, PUBLISH_TOKEN

    generated = {**GENERATED, **(PUBLISH_TOKEN if config.ingress.enabled else {}),
                 **(FEDERATION if config.federation.enabled else {})}
    shells = [f"burrow/{env}/{key}" for key in sorted(FEDERATION_CA)] if config.federation.enabled else []
    secrets = ", ".join(f"burrow/{env}/{key}" for key in sorted(generated))
    fields = sum(len(value) for value in generated.values())
    empty = f"{len(shells)} shell(s) without a value ({', '.join(shells)}); " if shells else ""
    for view in config.regional():  # every region: its own secrets (same path), queue, bucket and roles
        region, prefix = view.aws.region, view.stack_prefix
        assert f"credentials: {fields} values in {len(generated)} secrets ({secrets}) in {region}; {empty}" \
            "none in" in printed
        assert f"day 2: burrow-{prefix}-karpenter receives 5 EventBridge rules; burrow-{prefix}-backups-" \
            f"{config.aws.account_id} is KMS-encrypted and versioned" in printed
    if config.multi_region:  # prod: two regions, the global stack after the state bucket, federation's peering
        assert f"{env}-global: init + apply" in printed
        assert printed.index(f"{env}-common: init + apply") < printed.index(f"{env}-global: init + apply") \
            < printed.index(f"{env}-cluster: init + apply") < printed.index(f"{env}-us-east-1-common: init + apply")
        assert f"dns: {config.ingress.zone} answers {config.ingress.host} by latency from eu-west-1, us-east-1, each " \
            "tied to a /health check; certificates issued in 2 regions" in printed
        assert re.search(r"peering: us-east-1 <-> eu-west-1 active, \d+ routes in us-east-1", printed)
        assert f"token: burrow/{env}/producer holds one value in eu-west-1, us-east-1" in printed
    assert re.search(rf"{env}: apply -> empty re-plan -> destroy passed for \d+ stacks in "
                     rf"{len(config.region_names)} region\(s\); emulator holds nothing of ours", printed)


def qa_account() -> str:
    from burrow.config.loader import load_environment
    from tests.support.services import ROOT

    return load_environment("qa", ROOT / "environments").aws.account_id


def make_diff_qa(emulated_account: str, tmp_path) -> subprocess.CompletedProcess:
    """`make diff ENV=qa` as a user runs it, against an emulator whose callers are in `emulated_account`."""
    from tests.support.services import ROOT

    emulator = Emulator(emulated_account)
    try:
        env = {**os.environ, "BURROW_AWS_ENDPOINT": emulator.url, "CDKTF_OUTDIR": str(tmp_path / "out")}
        return subprocess.run(["make", "-s", "--no-print-directory", "diff", "ENV=qa"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=900)
    finally:
        emulator.close()


def test_credentials_of_another_account_are_refused_by_terraform(tmp_path):
    """qa's configuration planned with credentials of the production account: Terraform's own
    account guard stops it before anything is read or changed."""
    other = "345678901234"
    assert other != qa_account()
    result = make_diff_qa(other, tmp_path)
    assert result.returncode == 2 and "diff] Error 1" in result.stderr  # the tool failed (1), so make fails (2)
    assert f"AWS account ID not allowed: {other}" in result.stdout + result.stderr
    assert re.search(r"^  qa-common\s+failed", result.stdout, re.M)


def test_make_diff_plans_each_stack_in_order_and_names_what_it_cannot_plan(tmp_path):
    """`make diff ENV=qa`, run as a user runs it, against the emulator: the common layer's plan is
    shown; the cluster (whose inputs do not exist yet) and the Kubernetes stacks (whose providers
    cannot be installed here) are named as not planned, and the command succeeds."""
    result = make_diff_qa(qa_account(), tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert re.findall(r"^== (\S+)$", out, re.M) == ["qa-common", "qa-cluster", "qa-addons", "qa-app"]
    assert "+ resource \"aws_vpc\"" in out
    summary = dict(re.findall(r"^  (qa-\w+)\s+(.+)$", out.split("Summary of qa:")[1], re.M))
    assert re.fullmatch(r"changes\s+Plan: \d+ to add, 0 to change, 0 to destroy\.", summary["qa-common"])
    assert summary["qa-cluster"].startswith("not planned  reads the outputs of qa-common, which has no state yet")
    for stack in ("qa-addons", "qa-app"):
        assert summary[stack].startswith("not planned  providers cannot be installed on this machine")


def test_make_diff_without_an_environment_says_how_to_call_it():
    from tests.support.services import ROOT

    result = subprocess.run(["make", "-s", "--no-print-directory", "diff"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "usage: make diff ENV=<environment>" in result.stdout


def test_the_emulator_replicates_a_key_as_aws_does():
    """moto alone drops ReplicateKey's Tags (the provider would wait 10 minutes for them) and lets the
    replica's DescribeKey turn the primary into a replica (every later plan fails); it also drops the
    replica's description and a secret replica's KmsKeyId (every re-plan shows a change)."""
    emulator = Emulator()
    try:
        primary = emulator.client("kms", "eu-west-1")
        key = primary.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
        primary.replicate_key(KeyId=key, ReplicaRegion="us-east-1", Description="the replica",
                              Tags=[{"TagKey": "burrow", "TagValue": "yes"}])
        replica = emulator.client("kms", "us-east-1")
        assert replica.describe_key(KeyId=key)["KeyMetadata"]["Description"] == "the replica"
        assert primary.describe_key(KeyId=key)["KeyMetadata"]["Description"] == ""
        assert replica.list_resource_tags(KeyId=key)["Tags"] == [{"TagKey": "burrow", "TagValue": "yes"}]
        # each key keeps its own type, however often the replica is described
        for _ in range(2):
            assert replica.describe_key(KeyId=key)["KeyMetadata"]["MultiRegionConfiguration"]["MultiRegionKeyType"] \
                == "REPLICA"
            described = primary.describe_key(KeyId=key)["KeyMetadata"]["MultiRegionConfiguration"]
            assert described["MultiRegionKeyType"] == "PRIMARY"
            assert [r["Region"] for r in described["ReplicaKeys"]] == ["us-east-1"]
        # a secret's replica stays under the key it was given
        replica_key = f"arn:aws:kms:us-east-1:123456789012:key/{key}"
        secrets = emulator.client("secretsmanager", "eu-west-1")
        secrets.create_secret(Name="burrow/test", SecretString="x",
                              AddReplicaRegions=[{"Region": "us-east-1", "KmsKeyId": replica_key}])
        replicas = secrets.describe_secret(SecretId="burrow/test")["ReplicationStatus"]
        assert [(r["Region"], r["KmsKeyId"]) for r in replicas] == [("us-east-1", replica_key)]
    finally:
        emulator.close()


def test_the_parallel_run_starts_with_the_rehearsals_that_exist():
    """tests/conftest.py starts these first under xdist; a renamed test would silently start last."""
    from tests.conftest import FIRST

    rehearsal = test_aws_layers_bootstrap_apply_replan_empty_and_destroy_against_the_emulator
    [params] = [mark.args[1] for mark in rehearsal.pytestmark if mark.name == "parametrize"]
    assert list(FIRST) == [f"{__name__.replace('.', '/')}.py::{rehearsal.__name__}[{env}]" for env in params[::-1]]


def test_a_shell_the_cluster_fills_is_counted_apart_and_must_hold_no_value(tmp_path, capsys):
    """The federation CA's secret is tagged for External Secrets' PushSecret and created without a
    value: the rehearsal counts it as a shell, and refuses one that Terraform gave a value."""
    from burrow_tools.terraform.emulator import rehearse_credentials

    emulator = Emulator("345678901234")
    try:
        manager = emulator.client("secretsmanager", "eu-west-1")
        manager.create_secret(Name="burrow/prod/rabbitmq", SecretString=json.dumps({"password": "p" * 32}))
        manager.create_secret(Name="burrow/prod/federation-ca", Tags=[{"Key": "managed-by", "Value": "external-secrets"}])
        rehearse_credentials(tmp_path, emulator, "prod", "eu-west-1")
        assert "credentials: 1 values in 1 secrets (burrow/prod/rabbitmq) in eu-west-1; 1 shell(s) without a value " \
            "(burrow/prod/federation-ca); none in" in capsys.readouterr().out
        manager.put_secret_value(SecretId="burrow/prod/federation-ca", SecretString="{}")
        with pytest.raises(RuntimeError, match=r"shells that Terraform must leave empty hold a value: "
                                               r"\['burrow/prod/federation-ca'\]"):
            rehearse_credentials(tmp_path, emulator, "prod", "eu-west-1")
    finally:
        emulator.close()
