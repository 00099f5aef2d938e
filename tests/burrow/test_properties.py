"""What the synthesized stacks must say, stated as rules."""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys

import pytest
import yaml

from tests.conftest import ENVIRONMENTS
from tests.support.services import ROOT

CLOUD = [env for env in ENVIRONMENTS if env != "dev"]


def resources(stack: dict, kind: str) -> dict:
    return stack.get("resource", {}).get(kind, {})


def rabbitmq_values(synthesized, env: str) -> dict:
    release = next(r for r in resources(synthesized.stack(f"{env}-app"), "helm_release").values() if r["name"] == "rabbitmq")
    merged: dict = {}
    for doc in release["values"]:
        merged.update(yaml.safe_load(doc))
    return merged


def deployments(synthesized, env: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in synthesized.objects(env) if o["kind"] == "Deployment"}


@pytest.mark.parametrize(("env", "replicas"), [("dev", 1), ("qa", 1), ("preprod", 3), ("prod", 3)])
def test_rabbitmq_replicas_per_environment(synthesized, env, replicas):
    assert rabbitmq_values(synthesized, env)["replicaCount"] == replicas


def test_rabbitmq_uses_the_legacy_bitnami_image_and_the_pinned_chart(synthesized):
    for env in ENVIRONMENTS:
        values = rabbitmq_values(synthesized, env)
        assert values["image"]["registry"] == "docker.io"
        assert values["image"]["repository"] == "bitnamilegacy/rabbitmq"
        assert values["global"]["security"]["allowInsecureImages"] is True
        release = next(
            r for r in resources(synthesized.stack(f"{env}-app"), "helm_release").values() if r["name"] == "rabbitmq"
        )
        assert (release["repository"], release["chart"], release["version"]) == (
            "oci://registry-1.docker.io/bitnamicharts",
            "rabbitmq",
            "16.0.14",
        )


def test_prod_rabbitmq_pauses_the_minority_and_dev_has_no_persistence(synthesized):
    assert rabbitmq_values(synthesized, "prod")["clustering"]["partitionHandling"] == "pause_minority"
    assert rabbitmq_values(synthesized, "dev")["persistence"]["enabled"] is False
    assert rabbitmq_values(synthesized, "prod")["persistence"] == {"enabled": True, "size": "20Gi", "storageClass": "gp3"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_broker_credentials_are_generated_and_only_referenced(synthesized, env):
    app = synthesized.stack(f"{env}-app")
    secret = next(iter(resources(app, "kubernetes_secret_v1").values()))
    data = secret["data"]
    assert data["rabbitmq-password"].startswith("${random_password.")
    assert data["rabbitmq-erlang-cookie"].startswith("${random_password.")
    auth = rabbitmq_values(synthesized, env)["auth"]
    assert auth["existingPasswordSecret"] == auth["existingErlangSecret"] == secret["metadata"]["name"]
    assert "password" not in auth and "erlangCookie" not in auth
    text = json.dumps(app)
    assert not re.search(r'"(password|erlangCookie)"\s*:', text)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_workers_probe_health_and_ready_on_port_5000(synthesized, env):
    for name, deployment in deployments(synthesized, env).items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["ports"] == [{"name": "http", "containerPort": 5000, "protocol": "TCP"}], name
        assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deployments_set_exactly_the_variables_the_services_read(synthesized, env):
    from burrow_service.settings import COMMON_VARIABLES, ROLE_VARIABLES, SECRET_VARIABLES, load_settings

    for role, deployment in deployments(synthesized, env).items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env_vars = {e["name"]: e for e in container["env"]}
        assert set(env_vars) == set(COMMON_VARIABLES) | set(ROLE_VARIABLES[role])
        for name in SECRET_VARIABLES:
            assert "secretKeyRef" in env_vars[name]["valueFrom"], name
        plain = {k: v["value"] for k, v in env_vars.items() if "value" in v}
        settings = load_settings({**plain, "RABBITMQ_USERNAME": "u", "RABBITMQ_PASSWORD": "p"})
        assert settings.http_port == 5000
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > settings.shutdown_timeout


def test_image_tags_come_from_the_environment_and_are_never_latest(synthesized):
    images = {env: {n: d["spec"]["template"]["spec"]["containers"][0]["image"] for n, d in deployments(synthesized, env).items()} for env in ENVIRONMENTS}
    assert images["dev"]["producer"] == "localhost:5001/burrow/producer:dev"
    assert images["prod"]["consumer"] == "ghcr.io/burrow/consumer:0.1.0"
    assert not any(image.endswith(":latest") for env in images.values() for image in env.values())


def test_dev_has_no_aws_resources_and_keeps_local_state(synthesized):
    for name in ("dev-addons", "dev-app"):
        stack = synthesized.stack(name)
        assert "aws" not in stack.get("provider", {})
        assert "local" in stack["terraform"]["backend"]
    assert "dev-common" not in synthesized.stacks and "dev-cluster" not in synthesized.stacks


@pytest.mark.parametrize("env", CLOUD)
def test_cloud_state_is_in_s3_with_locking_one_key_per_stack(synthesized, env):
    for layer in ("common", "cluster", "addons", "app"):
        backend = synthesized.stack(f"{env}-{layer}")["terraform"]["backend"]["s3"]
        assert backend["bucket"] == f"burrow-{env}-tfstate"
        assert backend["key"] == f"{env}/{layer}.tfstate"
        assert backend["use_lockfile"] is True and backend["encrypt"] is True


@pytest.mark.parametrize("env", CLOUD)
def test_kubernetes_providers_come_from_the_cluster_stack_not_their_own(synthesized, env):
    for layer in ("addons", "app"):
        stack = synthesized.stack(f"{env}-{layer}")
        provider = stack["provider"]["kubernetes"][0]
        assert "terraform_remote_state" in provider["host"]
        assert provider["exec"][0]["args"][:2] == ["eks", "get-token"]
        assert "aws_eks_cluster" not in stack.get("resource", {})
        remote = stack["data"]["terraform_remote_state"]
        assert any(r["config"]["key"] == f"{env}/cluster.tfstate" for r in remote.values())


@pytest.mark.parametrize("env", CLOUD)
def test_state_bucket_is_versioned_encrypted_private_tls_only_and_protected(synthesized, env):
    common = synthesized.stack(f"{env}-common")
    bucket = next(iter(resources(common, "aws_s3_bucket").values()))
    assert bucket["bucket"] == f"burrow-{env}-tfstate"
    assert bucket["lifecycle"]["prevent_destroy"] is True
    assert next(iter(resources(common, "aws_s3_bucket_versioning").values()))["versioning_configuration"]["status"] == "Enabled"
    block = next(iter(resources(common, "aws_s3_bucket_public_access_block").values()))
    assert all(block[k] is True for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"))
    policy = json.loads(next(iter(resources(common, "aws_s3_bucket_policy").values()))["policy"])
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize(("env", "nat_gateways"), [("qa", 1), ("preprod", 1), ("prod", 3)])
def test_nat_per_zone_only_where_asked(synthesized, env, nat_gateways):
    assert len(resources(synthesized.stack(f"{env}-common"), "aws_nat_gateway")) == nat_gateways


@pytest.mark.parametrize("env", CLOUD)
def test_subnets_never_overlap_and_sit_inside_the_vpc(synthesized, env):
    common = synthesized.stack(f"{env}-common")
    vpc = ipaddress.ip_network(next(iter(resources(common, "aws_vpc").values()))["cidr_block"])
    subnets = [ipaddress.ip_network(s["cidr_block"]) for s in resources(common, "aws_subnet").values()]
    assert all(s.subnet_of(vpc) for s in subnets)
    assert not any(a.overlaps(b) for i, a in enumerate(subnets) for b in subnets[i + 1 :])


@pytest.mark.parametrize("env", CLOUD)
def test_registries_are_immutable_and_scanned(synthesized, env):
    repos = resources(synthesized.stack(f"{env}-common"), "aws_ecr_repository")
    assert sorted(r["name"] for r in repos.values()) == ["burrow/consumer", "burrow/producer"]
    for repo in repos.values():
        assert repo["image_tag_mutability"] == "IMMUTABLE"
        assert repo["image_scanning_configuration"]["scan_on_push"] is True


def test_eks_encrypts_secrets_and_spreads_nodes_over_private_subnets(synthesized):
    cluster_stack = synthesized.stack("prod-cluster")
    cluster = next(iter(resources(cluster_stack, "aws_eks_cluster").values()))
    assert cluster["encryption_config"]["resources"] == ["secrets"]
    assert cluster["vpc_config"]["endpoint_public_access"] is False
    group = next(iter(resources(cluster_stack, "aws_eks_node_group").values()))
    assert group["capacity_type"] == "ON_DEMAND"
    assert group["scaling_config"] == {"desired_size": 3, "max_size": 9, "min_size": 3}
    addons = {a["addon_name"] for a in resources(cluster_stack, "aws_eks_addon").values()}
    assert addons == {"vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver"}


def test_app_is_deployed_after_the_addons(synthesized):
    for built in synthesized.built:
        dependencies = [d.node.id for d in built.app.dependencies]
        assert f"{built.env.name}-addons" in dependencies


def test_dev_synth_never_imports_the_aws_bindings(tmp_path):
    script = (
        "import sys; sys.path.insert(0, 'constructs')\n"
        "from cdktf import App\n"
        "from burrow.config.loader import load_environments\n"
        "from burrow.synth import build_app\n"
        "from pathlib import Path\n"
        f"app = App(outdir={str(tmp_path)!r})\n"
        "build_app(app, load_environments(Path('environments'), ['dev']), Path('helm'))\n"
        "app.synth()\n"
        "print(sorted(m for m in sys.modules if m.startswith('cdktf_cdktf_provider')))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    loaded = result.stdout.strip().splitlines()[-1]
    assert "cdktf_cdktf_provider_aws" not in loaded
    assert "cdktf_cdktf_provider_helm" in loaded
