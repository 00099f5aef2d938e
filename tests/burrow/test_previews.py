"""Pull-request previews: one small, isolated, quota-bound app stack per PR in the host's cluster."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime

import pytest
import yaml
from cdktf import App, TerraformStack
from syrupy.extensions.json import JSONSnapshotExtension

from burrow.config.loader import load_environments
from burrow.errors import ConfigError
from burrow.k8s.release import terraform_unescape
from burrow.policy.guardrails import violations_in
from burrow.previews import PreviewRequest, parse_pr, preview_host, request_from_environment
from burrow.synth import build_preview_app, environment_objects
from burrow.synthesis import stacks_of
from burrow_tools.delivery.previews import expired_previews, forget, summary
from tests.support.services import ROOT

CREATED = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
REQUEST = PreviewRequest(42, "0123abcd" * 5, CREATED)


@pytest.fixture(scope="module")
def preview(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("preview")
    app = App(outdir=str(outdir))
    [built] = build_preview_app(app, preview_host(load_environments(ROOT / "environments"), None), REQUEST, ROOT / "helm")
    app.synth()
    stack = json.loads((outdir / "stacks" / "pr-42-app" / "cdk.tf.json").read_text())
    return stack, environment_objects(built), built


def objects(preview, kind: str) -> list[dict]:
    return [o for o in preview[1] if o["kind"] == kind]


def test_preview_stack_matches_snapshot(preview, snapshot):
    assert preview[0] == snapshot.use_extension(JSONSnapshotExtension)


def test_the_preview_is_one_stack_in_qas_cluster_with_its_own_state(preview):
    stack = preview[0]
    assert stack["terraform"]["backend"]["s3"]["key"] == "qa/previews/pr-42.tfstate"
    assert stack["terraform"]["backend"]["s3"]["bucket"] == "burrow-qa-tfstate"
    remote = stack["data"]["terraform_remote_state"]["host-cluster"]["config"]
    assert (remote["key"], remote["allowed_account_ids"]) == ("qa/cluster.tfstate", ["210987654321"])
    assert "cluster-endpoint" in stack["provider"]["kubernetes"][0]["host"]
    # No Terraform-generated credentials: nothing secret in the preview's state.
    assert set(stack["resource"]) == {"helm_release", "kubernetes_namespace_v1"}
    assert "random" not in stack.get("provider", {})


def test_namespace_is_restricted_labelled_and_under_quota(preview):
    [namespace] = preview[0]["resource"]["kubernetes_namespace_v1"].values()
    labels = namespace["metadata"]["labels"]
    assert namespace["metadata"]["name"] == "burrow-pr-42"
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    assert (labels["burrow.dev/pr"], labels["burrow.dev/commit"], labels["burrow.dev/expires-at"]) == (
        "42", "0123abcd" * 5, "20261126T093000Z")  # created + qa's ttl_hours (72)
    [quota] = objects(preview, "ResourceQuota")
    assert quota["spec"]["hard"] == {"requests.cpu": "2", "requests.memory": "4Gi", "limits.cpu": "4",
                                     "limits.memory": "8Gi", "pods": "20", "persistentvolumeclaims": "0"}
    [limits] = objects(preview, "LimitRange")
    assert limits["spec"]["limits"][0]["default"] == {"cpu": "500m", "memory": "512Mi"}


def test_the_preview_is_small(preview):
    releases = {r["name"]: r for r in preview[0]["resource"]["helm_release"].values()}
    values: dict = {}
    for doc in releases["rabbitmq"]["values"]:
        values.update(yaml.safe_load(terraform_unescape(doc)))
    assert values["replicaCount"] == 1 and values["persistence"]["enabled"] is False
    assert values["resources"]["limits"] == {"cpu": "500m", "memory": "512Mi"}
    [hpa] = objects(preview, "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 2)
    # KEDA reads Secrets only in its own namespace, where a preview's generated password is not.
    assert objects(preview, "ScaledObject") == []
    assert not objects(preview, "ServiceMonitor") and not objects(preview, "PrometheusRule")


def test_broker_credentials_are_generated_in_the_cluster_once(preview):
    [generator] = objects(preview, "Password")
    cookie, logins = sorted(objects(preview, "ExternalSecret"), key=lambda o: o["metadata"]["name"])
    assert generator["spec"]["symbols"] == 0 and generator["spec"]["length"] == 32
    for secret in (cookie, logins):  # generated once: a broker's password never changes under it
        assert secret["spec"]["refreshInterval"] == "0"
        assert all(d["sourceRef"]["generatorRef"]["name"] == generator["metadata"]["name"]
                   for d in secret["spec"]["dataFrom"])
    targets = [[d["rewrite"][0]["regexp"]["target"] for d in s["spec"]["dataFrom"]] for s in (cookie, logins)]
    assert targets == [["erlang_cookie"],
                       ["password", "producer_password", "consumer_password", "monitoring_password"]]
    assert cookie["spec"]["target"]["name"] == "rabbitmq-auth"
    assert re.fullmatch(r"rabbitmq-logins-[0-9a-f]{8}", logins["spec"]["target"]["name"])


def logins_secret(preview) -> dict:
    return next(o for o in objects(preview, "ExternalSecret") if o["metadata"]["name"].startswith("rabbitmq-logins-"))


def test_the_previews_services_log_in_as_their_own_users_not_the_administrator(preview):
    """A preview's broker has the users by role too: its definitions (in the generated Secret) give the
    producer write on the exchange only and the consumer read on the queue only, and each Deployment
    reads only its own role's keys; no workload reads the administrator's password."""
    from burrow.app.broker_users import broker_definitions
    from burrow.config.loader import load_environment

    secret = logins_secret(preview)
    name = secret["spec"]["target"]["name"]
    data = secret["spec"]["target"]["template"]["data"]
    fields = {role: "{{ ." + role + "_password }}" for role in ("producer", "consumer", "monitoring")}
    messaging = load_environment("qa", ROOT / "environments").messaging
    assert json.loads(data["load_definition.json"]) == broker_definitions("burrow", "{{ .password }}", fields, messaging)
    values: dict = {}
    rabbitmq = next(r for r in preview[0]["resource"]["helm_release"].values() if r["name"] == "rabbitmq")
    for doc in rabbitmq["values"]:
        values.update(yaml.safe_load(terraform_unescape(doc)))
    assert values["loadDefinition"]["existingSecret"] == values["auth"]["existingPasswordSecret"] == name
    assert values["auth"]["existingErlangSecret"] == "rabbitmq-auth"
    read = {}
    for deployment in objects(preview, "Deployment"):
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        refs = [e["valueFrom"]["secretKeyRef"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})]
        read[deployment["metadata"]["name"]] = {(ref["name"], ref["key"]) for ref in refs}
        assert env["RABBITMQ_TOPOLOGY"]["value"] == "passive"
    assert read == {
        role: {(name, f"{role}-rabbitmq-username"), (name, f"{role}-rabbitmq-password")}
        for role in ("producer", "consumer")
    }
    assert data["producer-rabbitmq-username"] == "burrow-producer"
    assert data["consumer-rabbitmq-password"] == "{{ .consumer_password }}"


def test_a_changed_login_template_is_a_new_secret_and_an_unchanged_one_keeps_its_name(tmp_path):
    """External Secrets renders a generated Secret once (`refreshInterval: 0`) and never re-renders it
    when the template changes: a preview updated with other definitions (here another work queue)
    must get a Secret of another name, or its broker would boot without them. The same template
    keeps the name, so an update that changes nothing rolls nothing."""
    from burrow import AppNamespace, KubeconfigCluster, RabbitMqBroker

    def logins_name(queue: str) -> str:
        app = App(outdir=str(tmp_path / queue))
        stack = TerraformStack(app, "team")
        KubeconfigCluster(kubeconfig_path="k", context="c", version="1.33").configure_providers(stack)
        namespace = AppNamespace(stack, "ns", {"name": "orders"})
        broker = RabbitMqBroker(stack, "mq", namespace=namespace, props={
            "image": {"registry": "r", "repository": "rabbitmq", "tag": "4"}, "generate_credentials_in_cluster": True,
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
            "keda_namespace": None, "messaging": {"queue": queue}})
        return broker.login_secret

    assert logins_name("orders.work") == logins_name("orders.work")
    assert logins_name("orders.work") != logins_name("orders.other")
def peers(policy: dict) -> list[dict]:
    rules = policy["spec"].get("ingress", []) + policy["spec"].get("egress", [])
    return [peer for rule in rules for peer in rule.get("from", []) + rule.get("to", [])]


def test_no_policy_admits_another_namespace_but_dns_and_keda(preview):
    """Default deny both ways; the only other namespaces named are kube-system (DNS) and keda (queue
    depth). No selector matches namespaces by a label all previews share, so previews cannot reach
    each other; the only addresses named are the cluster's private subnets, for the API server."""
    policies = objects(preview, "NetworkPolicy")
    [deny] = [p for p in policies if p["metadata"]["name"] == "default-deny"]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": []}
    named = set()
    for policy in policies:
        for peer in peers(policy):
            if "namespaceSelector" in peer:
                labels = peer["namespaceSelector"]["matchLabels"]
                assert list(labels) == ["kubernetes.io/metadata.name"], labels
                named.add(labels["kubernetes.io/metadata.name"])
    for policy in policies:
        for rule in policy["spec"].get("egress", []):
            if any("ipBlock" in peer for peer in rule.get("to", [])):
                assert {port["port"] for port in rule["ports"]} == {443, 6443}, policy
    assert not any("ipBlock" in peer for policy in policies for rule in policy["spec"].get("ingress", [])
                   for peer in rule.get("from", []))
    assert named == {"kube-system", "keda"}


def test_the_preview_meets_its_tiers_guardrails_and_a_quota_is_required(tmp_path):
    app = App(outdir=str(tmp_path))
    [built] = build_preview_app(app, preview_host(load_environments(ROOT / "environments"), None), REQUEST, ROOT / "helm")
    built.app.namespace.objects = tuple(o for o in built.app.namespace.objects if o["kind"] != "ResourceQuota")
    with pytest.raises(RuntimeError):
        app.synth()
    assert [f"{f.rule}: {f.message}" for f in violations_in(stacks_of(app))] == [
        "namespace-quota: add a ResourceQuota to the namespace (AppNamespace quota=…)"]


@pytest.mark.parametrize("value", ["0", "-3", "abc", "4.2", "", "1234567890"])
def test_a_pr_number_is_a_positive_integer(value):
    with pytest.raises(ConfigError, match=r"PR = .*: a pull request number is a positive integer"):
        parse_pr(value)


def test_the_host_must_exist_and_have_previews_on():
    envs = load_environments(ROOT / "environments")
    assert preview_host(envs, None).name == "qa"
    with pytest.raises(ConfigError, match="HOST = 'uat': previews are off there"):
        preview_host(envs, "uat")
    with pytest.raises(ConfigError, match="HOST = 'nope': no such environment; environments with previews: qa"):
        preview_host(envs, "nope")


def test_previews_only_in_an_eks_environment(tmp_path):
    import shutil

    from burrow.config.loader import load_environment

    shutil.copytree(ROOT / "environments", tmp_path / "environments")
    with (tmp_path / "environments" / "dev.yaml").open("a") as f:
        f.write("previews: {enabled: true}\n")
    with pytest.raises(ConfigError, match=r"dev.yaml: previews.enabled = True: previews are hosted in a shared EKS"):
        load_environment("dev", tmp_path / "environments")


def test_a_bad_commit_or_created_time_is_named():
    with pytest.raises(ConfigError, match="COMMIT = 'main': a commit is 7 to 40 lowercase hex digits"):
        request_from_environment({"BURROW_PREVIEW": "4", "BURROW_PREVIEW_COMMIT": "main"})
    with pytest.raises(ConfigError, match="BURROW_PREVIEW_CREATED = 'yesterday'"):
        request_from_environment({"BURROW_PREVIEW": "4", "BURROW_PREVIEW_CREATED": "yesterday"})
    request = request_from_environment({"BURROW_PREVIEW": "4", "BURROW_PREVIEW_CREATED": "2026-11-23T09:30:00Z"})
    assert request == PreviewRequest(4, None, CREATED)


def run_make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_make_preview_synth_as_the_readme_prints_it(tmp_path):
    result = run_make("preview-synth", "PR=42", f"CDKTF_OUTDIR={tmp_path}")
    assert result.returncode == 0, result.stderr
    assert "burrow: preview of pull request 42: pr-42-app in qa's cluster, namespace burrow-pr-42" in result.stderr
    assert sorted(p.name for p in (tmp_path / "stacks").iterdir()) == ["pr-42-app"]
    assert (tmp_path / "objects" / "pr42.yaml").is_file()


def test_make_preview_with_a_bad_pr_writes_nothing(tmp_path):
    result = run_make("preview-synth", "PR=x1", f"CDKTF_OUTDIR={tmp_path}")
    assert result.returncode == 2
    assert "PR = 'x1': a pull request number is a positive integer (e.g. PR=42)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "stacks").exists()


def test_the_pr_comment_says_what_was_deployed():
    from burrow.config.loader import load_environment

    text = summary(load_environment("qa", ROOT / "environments"), REQUEST, None)
    assert text.startswith("### Preview of pull request #42\n")
    assert "| namespace | `burrow-pr-42` |" in text and "| expires | 2026-11-26T09:30:00+00:00 |" in text
    assert "`qa/previews/pr-42.tfstate`" in text


def test_expired_previews_are_found_by_their_labels():
    def namespace(pr: str, expires: str, preview: str = "true") -> dict:
        return {"metadata": {"name": f"burrow-pr-{pr}", "labels": {
            "burrow.dev/preview": preview, "burrow.dev/pr": pr, "burrow.dev/expires-at": expires}}}

    listing = {"items": [namespace("7", "20261123T093000Z"), namespace("8", "20261123T093001Z"),
                         namespace("3", "20261101T000000Z"), namespace("9", "20261101T000000Z", preview="false"),
                         {"metadata": {"name": "burrow-qa", "labels": {}}}]}
    assert expired_previews(listing, CREATED) == [3, 7]


def test_forget_removes_every_version_of_the_previews_state(monkeypatch):
    from burrow.config.loader import load_environment
    from burrow_tools.terraform.emulator import Emulator

    host = load_environment("qa", ROOT / "environments")
    emulator = Emulator(host.aws.account_id)
    try:
        monkeypatch.setenv("BURROW_AWS_ENDPOINT", emulator.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "emulator")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "emulator")
        s3 = emulator.client("s3", host.aws.region)
        s3.create_bucket(Bucket=host.state.bucket, CreateBucketConfiguration={"LocationConstraint": host.aws.region})
        s3.put_bucket_versioning(Bucket=host.state.bucket, VersioningConfiguration={"Status": "Enabled"})
        for body in (b"1", b"2"):
            s3.put_object(Bucket=host.state.bucket, Key="qa/previews/pr-42.tfstate", Body=body)
        s3.put_object(Bucket=host.state.bucket, Key="qa/previews/pr-420.tfstate", Body=b"other")
        removed = forget(host, 42)
        assert len(removed) == 2
        left = s3.list_object_versions(Bucket=host.state.bucket).get("Versions", [])
        assert [v["Key"] for v in left] == ["qa/previews/pr-420.tfstate"]  # another preview's state is untouched
    finally:
        emulator.close()


def test_make_previews_expired_without_cloud_access_fails_with_one_line_not_a_traceback(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true")
    result = subprocess.run(["make", "previews-expired"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "previews: FAILED: " in result.stderr and "Traceback" not in result.stderr, result.stderr
