"""Every string in every synthesized stack is a valid Terraform template, checked by the real
Terraform (`burrow_tools.terraform.templates`), including the Kubernetes stacks whose providers
cannot be installed here."""

from __future__ import annotations

import json
import shutil

from burrow.k8s.release import terraform_escape, terraform_unescape, to_yaml
from burrow_tools.terraform.templates import check_outdir


def test_every_synthesized_stack_holds_only_valid_terraform_strings(synthesized):
    results = check_outdir(synthesized.outdir)
    assert set(results) == set(synthesized.stacks)
    assert {name: problems for name, problems in results.items() if problems} == {}


def test_the_check_catches_a_planted_datasource_reference(synthesized, tmp_path):
    shutil.copytree(synthesized.outdir / "stacks" / "prod-app", tmp_path / "stacks" / "prod-app")
    stack_file = tmp_path / "stacks" / "prod-app" / "cdk.tf.json"
    stack = json.loads(stack_file.read_text())
    release = next(iter(stack["resource"]["helm_release"].values()))
    release["values"].append('grafana:\n  uid: "${datasource}"\n')
    stack_file.write_text(json.dumps(stack))
    [problem] = check_outdir(tmp_path)["prod-app"]
    assert problem.startswith("Invalid reference: A reference to a resource type must be followed by")
    assert '${datasource}' in problem


def test_references_to_resources_the_stack_does_not_declare_are_caught(synthesized, tmp_path):
    shutil.copytree(synthesized.outdir / "stacks" / "dev-app", tmp_path / "stacks" / "dev-app")
    stack_file = tmp_path / "stacks" / "dev-app" / "cdk.tf.json"
    stack = json.loads(stack_file.read_text())
    next(iter(stack["resource"]["helm_release"].values()))["name"] = "${helm_release.nowhere.name}"
    stack_file.write_text(json.dumps(stack))
    [problem] = check_outdir(tmp_path)["dev-app"]
    assert 'A managed resource "helm_release" "nowhere" has not been declared' in problem


def test_literal_text_is_escaped_once_and_tokens_are_left_alone():
    text = 'uid: "${datasource}" %{if} ${TfToken[TOKEN.12]}'
    escaped = terraform_escape(text)
    assert escaped == 'uid: "$${datasource}" %%{if} ${TfToken[TOKEN.12]}'
    assert terraform_unescape(escaped) == text
    assert "$${x}" in to_yaml({"a": "${x}"})


def test_each_is_known_only_inside_a_repeated_resource(synthesized, tmp_path):
    """The certificate's validation records use `each.value` (for_each): valid there. The same
    reference planted in a resource that is not repeated is caught."""
    shutil.copytree(synthesized.outdir / "stacks" / "prod-cluster", tmp_path / "stacks" / "prod-cluster")
    stack_file = tmp_path / "stacks" / "prod-cluster" / "cdk.tf.json"
    stack = json.loads(stack_file.read_text())
    records = stack["resource"]["aws_route53_record"]
    assert any("each.value" in json.dumps(r) for r in records.values())
    assert check_outdir(tmp_path)["prod-cluster"] == []
    next(iter(stack["resource"]["aws_iam_role"].values()))["description"] = "${each.value.name}"
    stack_file.write_text(json.dumps(stack))
    [problem] = check_outdir(tmp_path)["prod-cluster"]
    assert 'each.value' in problem
