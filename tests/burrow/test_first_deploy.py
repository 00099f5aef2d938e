"""What the first deploy of a brand-new account needs, stated as rules on the synthesized stacks:
every secret a pod waits for exists in its region before it is read, charts install after the
CRDs they render, the deploys reach the cluster API, NetworkPolicy is enforced, and the stacks
name the Terraform they need."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from burrow.config.loader import load_environment
from burrow.config.schema import CATEGORY_GIB_PER_VCPU, INSTANCE_SIZE_VCPUS, SUPPORTED_KUBERNETES_VERSIONS
from burrow.errors import ConfigError, PropsError
from burrow.k8s.release import terraform_unescape
from burrow_tools.delivery.deploy_path import deploy_path_check, deploy_path_problems, deploy_runners
from tests.support.services import ROOT

CLOUD = ("qa", "uat", "preprod", "prod")


def resources(stack: dict, kind: str) -> dict:
    return stack.get("resource", {}).get(kind, {})


def releases(stack: dict) -> dict[str, tuple[str, dict]]:
    """helm_release name -> (Terraform id, resource)."""
    return {r["name"]: (key, r) for key, r in resources(stack, "helm_release").items()}


# --- 1. the first prod deploy: no region waits for a secret of a region deployed after it --------


def secrets_in_region(synthesized, env: str, upto: int) -> dict[str, set[str]]:
    """Region -> Secrets Manager names that exist there once the first `upto` regions' cluster
    stacks are applied (each region's own secrets, and replicas the earlier regions made)."""
    config = load_environment(env, ROOT / "environments")
    found: dict[str, set[str]] = {region: set() for region in config.region_names}
    for view in config.regional()[:upto]:
        for secret in resources(
            synthesized.stack(f"{view.stack_prefix}-cluster"), "aws_secretsmanager_secret"
        ).values():
            for region in [view.aws.region, *(r["region"] for r in secret.get("replica") or [])]:
                found[region].add(secret["name"])
    return found


@pytest.mark.parametrize("env", CLOUD)
def test_every_external_secret_reads_only_its_regions_store_and_secrets_that_exist_by_then(synthesized, env):
    """Regions deploy one after another, the primary first. A region's ExternalSecrets may read only
    its own region's store, and only secrets that its own or an earlier region's cluster stack has
    written by the time its app stack runs; else the Secret never appears and the pods that mount it
    never start (prod's broker waited for us-east-1, deployed after it: the deploy deadlocked)."""
    config = load_environment(env, ROOT / "environments")
    for index, view in enumerate(config.regional(), start=1):
        available = secrets_in_region(synthesized, env, index)[view.aws.region]
        externals = [o for o in synthesized.objects(env, view.stack_prefix) if o["kind"] == "ExternalSecret"]
        assert externals
        for external in externals:
            name = f"{view.stack_prefix}: {external['metadata']['name']}"
            namespace = external["metadata"]["namespace"]
            assert external["spec"]["secretStoreRef"]["name"] == f"burrow-secrets-manager-{namespace}", name
            for source in external["spec"]["dataFrom"]:
                if "generatorRef" in source.get("sourceRef", {}):
                    continue  # generated in the cluster (previews)
                assert "storeRef" not in source.get("sourceRef", {}), name
                assert source["extract"]["key"] in available, (name, source["extract"]["key"], sorted(available))
        stores = [o for o in synthesized.objects(env, view.stack_prefix) if o["kind"] == "ClusterSecretStore"]
        assert stores
        assert {store["spec"]["provider"]["aws"]["region"] for store in stores} == {view.aws.region}


def test_federation_links_log_in_with_the_environments_one_federation_password(synthesized):
    """prod: the federation password is generated once in the primary region (deployed first) and
    replicated to us-east-1; each broker's boot definitions hold the federation user with it, and
    each upstream logs in as that user, so no broker needs another region's broker password."""
    [federation] = [
        s
        for s in resources(synthesized.stack("prod-cluster"), "aws_secretsmanager_secret").values()
        if s["name"] == "burrow/prod/federation"
    ]
    assert [r["region"] for r in federation["replica"]] == ["us-east-1"]
    assert federation["replica"][0]["kms_key_id"].startswith("${aws_kms_replica_key.credentials_replicated-key-us-east-1")
    secondary = synthesized.stack("prod-us-east-1-cluster")
    assert "burrow/prod/federation" not in {
        s["name"] for s in resources(secondary, "aws_secretsmanager_secret").values()
    }
    for prefix, peer in (("prod", "us-east-1"), ("prod-us-east-1", "eu-west-1")):
        [external] = [
            o
            for o in synthesized.objects("prod", prefix)
            if o["kind"] == "ExternalSecret" and o["metadata"]["name"] == "rabbitmq-definitions"
        ]
        assert external["spec"]["dataFrom"][0] == {"extract": {"key": "burrow/prod/rabbitmq"}}
        assert external["spec"]["dataFrom"][-1] == {
            "extract": {"key": "burrow/prod/federation"},
            "rewrite": [{"regexp": {"source": "^password$", "target": "federation_password"}}],
        }
        definitions = json.loads(external["spec"]["target"]["template"]["data"]["load_definition.json"])
        users = {u["name"]: u for u in definitions["users"]}
        assert users["burrow-federation"] == {
            "name": "burrow-federation",
            "password": "{{ .federation_password }}",
            "tags": "",
        }
        [upstream] = definitions["parameters"]
        host = f"rabbitmq.{peer}.prod.burrow.example.com"
        assert upstream["value"]["uri"] == (
            f"amqps://burrow-federation:{{{{ .federation_password }}}}@{host}:5671/%2F"
            f"?cacertfile=/opt/bitnami/rabbitmq/certs/ca_certificate.pem&verify=verify_peer&server_name_indication={host}"
        )


# --- 2. add-ons after the CRDs they use; an `after=` that finds nothing is an error ----------------


@pytest.mark.parametrize("chart", ["aws-load-balancer-controller", "external-dns", "karpenter", "velero"])
def test_charts_that_render_a_service_monitor_install_after_kube_prometheus_stack(synthesized, chart):
    addons = releases(synthesized.stack("prod-addons"))
    monitoring_id, _ = addons["kube-prometheus-stack"]
    _, release = addons[chart]
    assert yaml.safe_load(terraform_unescape(release["values"][0])).get("serviceMonitor", {"enabled": True}) != {
        "enabled": False
    }
    assert f"helm_release.{monitoring_id}" in release["depends_on"], chart


def dev_addons_with(addon, tmp_path):
    from cdktf import App

    from burrow.addons.metrics_server import metrics_server
    from burrow.spi import KubeconfigCluster
    from burrow.stacks.addons import AddOnsLayer

    env = load_environment("dev", ROOT / "environments")
    cluster = KubeconfigCluster(kubeconfig_path="~/.kube/config", context="kind-burrow", version="1.33")
    app = App(outdir=str(tmp_path))
    return AddOnsLayer(app, env, cluster=cluster, addons=[metrics_server(), addon])


def chart_addon(name: str, **order):
    """A chart add-on that installs nothing real, ordered by `after`/`after_if_present`."""
    from burrow.addons.base import HelmAddOn

    return HelmAddOn(
        name=name,
        repository="https://example.com/charts",
        chart=name,
        version="1.0.0",
        namespace="kube-system",
        **order,
    )


def test_an_after_name_that_finds_nothing_stops_synthesis_naming_the_addon_and_what_exists(tmp_path):
    typo = chart_addon("edge", after=("monitoring",))
    with pytest.raises(PropsError) as caught:
        dev_addons_with(typo, tmp_path)
    message = str(caught.value)
    assert message.startswith(
        "dev-addons/edge: after=('monitoring',) is invalid: no add-on 'monitoring' is "
        "installed before edge in this stack (installed before it: metrics-server)"
    ), message


def test_an_optional_after_name_is_skipped_when_absent_and_followed_when_present(tmp_path):
    optional = chart_addon("logs", after_if_present=("storage-classes", "metrics-server"))
    from cdktf import Testing

    synthesized = json.loads(Testing.synth(dev_addons_with(optional, tmp_path)))
    [(logs_id, logs)] = [(key, r) for key, r in resources(synthesized, "helm_release").items() if r["name"] == "logs"]
    [metrics_id] = [key for key, r in resources(synthesized, "helm_release").items() if r["name"] == "metrics-server"]
    assert logs["depends_on"] == [f"helm_release.{metrics_id}"]


# --- 3. the deploys reach the cluster API ---------------------------------------------------------


def test_the_api_endpoint_is_public_for_the_configured_networks_and_private_access_stays_on(synthesized):
    for env in CLOUD:
        config = load_environment(env, ROOT / "environments")
        for view in config.regional():
            [cluster] = resources(synthesized.stack(f"{view.stack_prefix}-cluster"), "aws_eks_cluster").values()
            vpc = cluster["vpc_config"]
            assert vpc["endpoint_private_access"] is True
            assert vpc["endpoint_public_access"] is (view.cluster.api_access.deploy_from == "internet")
            assert vpc["public_access_cidrs"] == view.cluster.api_access.public_cidrs


@pytest.fixture
def env_dir(tmp_path) -> Path:
    target = tmp_path / "environments"
    shutil.copytree(ROOT / "environments", target)
    return target


def qa_with(env_dir: Path, api_access: str) -> Path:
    path = env_dir / "qa.yaml"
    path.write_text(path.read_text().replace("cluster:\n", f"cluster:\n  api_access: {api_access}\n", 1))
    return path


@pytest.mark.parametrize(
    ("api_access", "expected"),
    [
        (
            "{deploy_from: internet, public_cidrs: []}",
            "cluster.api_access = {'deploy_from': 'internet', 'public_cidrs': []}: "
            "deploy_from: internet needs public_cidrs",
        ),
        (
            "{deploy_from: internet, public_cidrs: [" + ", ".join(f"10.{i}.0.0/16" for i in range(41)) + "]}",
            "cluster.api_access.public_cidrs = ['10.0.0.0/16', ",
        ),
        (
            "{deploy_from: internet, public_cidrs: [10.0.0.1/8]}",
            "cluster.api_access.public_cidrs = ['10.0.0.1/8']: '10.0.0.1/8' is not an IPv4 network in CIDR notation",
        ),
        (
            "{deploy_from: vpc, public_cidrs: [203.0.113.0/24]}",
            "public_cidrs ['203.0.113.0/24'] are only used with deploy_from: internet",
        ),
        (
            "{deploy_from: laptop, public_cidrs: []}",
            "cluster.api_access.deploy_from = 'laptop': Input should be 'internet' or 'vpc'",
        ),
    ],
)
def test_an_api_access_that_cannot_deploy_is_refused_naming_file_key_and_value(env_dir, api_access, expected):
    path = qa_with(env_dir, api_access)
    with pytest.raises(ConfigError) as caught:
        load_environment("qa", env_dir)
    assert f"{path}: " in str(caught.value) and expected in str(caught.value), str(caught.value)


GITHUB_HOSTED_JOB = """jobs:
  qa:
    runs-on: ubuntu-24.04
    steps:
      - run: make deploy ENV=qa RELEASE=release.json
  prod:
    runs-on: [self-hosted, burrow-prod]
    steps:
      - run: make deploy ENV=prod REGION=eu-west-1
"""


def test_the_deploy_workflows_runners_are_read_per_environment(tmp_path):
    workflow = tmp_path / "deploy.yml"
    workflow.write_text(GITHUB_HOSTED_JOB)
    assert deploy_runners(workflow) == {
        "qa": ("qa", ["ubuntu-24.04"]),
        "prod": ("prod", ["self-hosted", "burrow-prod"]),
    }


@pytest.mark.parametrize(
    ("api_access", "expected"),
    [
        (
            "{deploy_from: vpc, public_cidrs: []}",
            "cluster.api_access.deploy_from = 'vpc': .github/workflows/deploy.yml "
            "job 'qa' deploys qa on GitHub-hosted runners (runs-on: ubuntu-24.04), outside the VPC",
        ),
        (
            "{deploy_from: internet, public_cidrs: [203.0.113.0/24]}",
            "cluster.api_access.public_cidrs = "
            "['203.0.113.0/24']: .github/workflows/deploy.yml job 'qa' deploys qa on GitHub-hosted runners",
        ),
    ],
)
def test_a_deploy_path_the_workflows_runners_cannot_use_is_refused(env_dir, tmp_path, api_access, expected):
    path = qa_with(env_dir, api_access)
    workflow = tmp_path / "deploy.yml"
    workflow.write_text(GITHUB_HOSTED_JOB)
    problems = deploy_path_problems(load_environment("qa", env_dir), deploy_runners(workflow), env_dir)
    assert len(problems) == 1 and problems[0].startswith(f"{path}: {expected}"), problems


def test_self_hosted_runners_may_deploy_from_the_vpc(env_dir, tmp_path):
    path = env_dir / "prod.yaml"
    path.write_text(
        path.read_text().replace("cluster:\n", "cluster:\n  api_access: {deploy_from: vpc, public_cidrs: []}\n", 1)
    )
    workflow = tmp_path / "deploy.yml"
    workflow.write_text(GITHUB_HOSTED_JOB)
    assert deploy_path_problems(load_environment("prod", env_dir), deploy_runners(workflow), env_dir) == []


def test_the_repositorys_workflow_and_environments_agree_and_synthesis_refuses_otherwise(env_dir, tmp_path, capsys):
    from burrow.config.loader import load_environments
    from burrow.synth import main

    assert deploy_path_check(ROOT)(load_environments(ROOT / "environments")) == []
    root = tmp_path / "repo"
    shutil.copytree(env_dir, root / "environments")
    (root / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(ROOT / ".github" / "workflows" / "deploy.yml", root / ".github" / "workflows")
    qa_with(root / "environments", "{deploy_from: vpc, public_cidrs: []}")
    assert main(root, checks=[deploy_path_check(root)]) == 2
    assert (
        "qa.yaml: cluster.api_access.deploy_from = 'vpc': .github/workflows/deploy.yml job 'qa'"
        in capsys.readouterr().err
    )


# --- 4. NetworkPolicy is enforced by the VPC CNI --------------------------------------------------


def test_the_vpc_cni_enforces_network_policy_on_every_eks_cluster(synthesized):
    assert min(SUPPORTED_KUBERNETES_VERSIONS, key=lambda v: tuple(map(int, v.split(".")))) >= "1.25"
    clusters = [name for name in synthesized.stacks if name.endswith("-cluster")]
    assert len(clusters) == 5  # qa, uat, preprod, prod, prod-us-east-1
    for name in clusters:
        [cni] = [
            a for a in resources(synthesized.stack(name), "aws_eks_addon").values() if a["addon_name"] == "vpc-cni"
        ]
        assert json.loads(cni["configuration_values"]) == {"enableNetworkPolicy": "true"}, name


# --- 5. the Terraform the stacks need -------------------------------------------------------------


def test_every_stack_names_the_terraform_it_needs(synthesized):
    for name, stack in synthesized.stacks.items():
        assert stack["terraform"]["required_version"] == ">= 1.11", name


def test_the_local_terraform_accepts_the_required_version_and_an_older_one_would_refuse(synthesized, tmp_path):
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.fail("no terraform CLI on PATH; the suite needs Terraform >= 1.11")
    for required, accepted in (
        (synthesized.stack("dev-app")["terraform"]["required_version"], True),
        (">= 99.0", False),
    ):
        folder = tmp_path / required.replace(" ", "").replace(">=", "min")
        folder.mkdir()
        (folder / "main.tf.json").write_text(json.dumps({"terraform": {"required_version": required}}))
        result = subprocess.run(
            [terraform, "init", "-backend=false", "-input=false"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert (result.returncode == 0) is accepted, result.stdout + result.stderr
        assert ("Unsupported Terraform Core version" in result.stderr) is not accepted


# --- 6. judged: Loki's cache fits a core node; RabbitMQ's two scrape endpoints stay apart ---------


def test_lokis_chunks_cache_fits_beside_the_system_pods_on_a_core_node(synthesized):
    """The Loki chart requests round(1.2 x allocatedMemory) MiB for its chunks cache; it must take at
    most a quarter of the smallest core node of every environment that runs Loki."""
    for env in CLOUD:
        config = load_environment(env, ROOT / "environments")
        if not (config.monitoring.enabled and config.monitoring.loki.enabled):
            continue
        _, loki = releases(synthesized.stack(f"{env}-addons"))["loki"]
        allocated = (
            yaml.safe_load(terraform_unescape(loki["values"][0])).get("chunksCache", {}).get("allocatedMemory", 8192)
        )  # the chart's default (8192 at 6.29.0 and 18.11.0)
        request_mib = (allocated * 12 + 5) // 10
        smallest_gib = min(
            INSTANCE_SIZE_VCPUS[t.split(".")[1]] * CATEGORY_GIB_PER_VCPU[t[0]]
            for group in config.cluster.eks.node_groups.values()
            for t in group.instance_types
        )
        assert request_mib <= smallest_gib * 1024 // 4, (env, request_mib, smallest_gib)


def test_rabbitmqs_aggregated_and_detailed_metrics_are_distinct_series(synthesized):
    """Both ServiceMonitor endpoints scrape the same pods and port: the detailed one gets its own job
    and drops its copy of rabbitmq_identity_info, so `up` and that series count each node once."""
    for env in ("qa", "prod"):
        monitor = synthesized.rabbitmq_values(env)["metrics"]["serviceMonitor"]
        assert monitor["default"] == {"enabled": True}
        assert monitor["detailed"]["relabelings"] == [{"targetLabel": "job", "replacement": "rabbitmq-detailed"}]
        assert monitor["detailed"]["metricRelabelings"] == [
            {"sourceLabels": ["__name__"], "regex": "rabbitmq_identity_info", "action": "drop"}
        ]
    [board] = [o for o in synthesized.objects("prod", "prod") if o["metadata"]["name"] == "burrow-dashboard"]
    panels = json.loads(board["data"]["burrow-dashboard.json"])["panels"]
    expressions = [target["expr"] for panel in panels for target in panel.get("targets", [])]
    assert 'sum(up{namespace="burrow-prod", service="rabbitmq", job="rabbitmq"})' in expressions
