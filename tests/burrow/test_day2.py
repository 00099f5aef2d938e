"""Nodes that scale with the work (Karpenter) and backups that restore (Velero), stated as rules
over the synthesized stacks, plus the guardrails and configuration errors that protect them."""

from __future__ import annotations

import json

import pytest
import yaml
from cdktf import App

from burrow.addons.karpenter import CHART_VERSION as KARPENTER_VERSION
from burrow.addons.velero import CHART_VERSION as VELERO_VERSION
from burrow.addons.velero import PLUGIN_IMAGE
from burrow.config.loader import load_environment
from burrow.config.schema import cron_problem
from burrow.k8s.release import terraform_unescape
from burrow.spi import BackupAccess, NodeAutoscalingAccess, TokenCluster
from burrow.stacks.addons import AddOnsLayer, configured_addons
from tests.burrow.test_config import env_dir, error_for, write  # noqa: F401 - env_dir is a fixture
from tests.burrow.test_guardrails import env, synth_error, violations
from tests.conftest import ENVIRONMENTS
from tests.support.services import ROOT

CLOUD = [name for name in ENVIRONMENTS if name != "dev"]


def resources(stack: dict, kind: str) -> dict:
    return stack.get("resource", {}).get(kind, {})


def releases(synthesized, env_name: str) -> dict[str, dict]:
    return {r["name"]: r for r in resources(synthesized.stack(f"{env_name}-addons"), "helm_release").values()}


def values_of(release: dict) -> dict:
    merged: dict = {}
    for doc in release.get("values") or []:
        merged.update(yaml.safe_load(terraform_unescape(doc)))
    return merged


def objects_of_kind(synthesized, env_name: str, kind: str, prefix: str | None = None) -> list[dict]:
    """The objects of `kind` in one region of the environment (default: its primary region)."""
    return [o for o in synthesized.objects(env_name, prefix or env_name) if o["kind"] == kind]


def policy(resource: dict) -> dict:
    return json.loads(resource["policy"])


def config(env_name: str):
    return load_environment(env_name, ROOT / "environments")


# --- Karpenter ---------------------------------------------------------------------------------


@pytest.mark.parametrize("env_name", CLOUD)
def test_karpenter_installs_its_crds_first_then_the_controller_at_one_pinned_version(synthesized, env_name):
    found = releases(synthesized, env_name)
    crds, controller = found["karpenter-crd"], found["karpenter"]
    assert crds["version"] == controller["version"] == KARPENTER_VERSION
    assert crds["repository"] == controller["repository"] == "oci://public.ecr.aws/karpenter"
    assert controller["skip_crds"] is True and "skip_crds" not in crds
    assert "helm_release.karpenter_crds_release_FC8052A6" in controller["depends_on"]
    assert any("kube-prometheus-stack_release" in dep for dep in controller["depends_on"])  # its ServiceMonitor CRD
    values = values_of(controller)
    assert values["settings"]["interruptionQueue"].startswith("${")  # the cluster stack's queue
    assert values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("${")
    assert controller["namespace"] == "kube-system"


def test_dev_keeps_its_nodes_as_they_are(synthesized):
    assert not {"karpenter", "karpenter-crd", "velero"} & set(releases(synthesized, "dev"))
    assert objects_of_kind(synthesized, "dev", "NodePool") == []
    pods = [o["spec"]["template"]["spec"] for o in objects_of_kind(synthesized, "dev", "Deployment")]
    assert pods and all("nodeSelector" not in pod for pod in pods)


@pytest.mark.parametrize(
    ("env_name", "capacity", "limits", "budget"),
    [
        ("qa", ["spot", "on-demand"], {"cpu": "32", "memory": "128Gi"}, "10%"),
        ("uat", ["spot", "on-demand"], {"cpu": "32", "memory": "128Gi"}, "10%"),
        ("preprod", ["on-demand"], {"cpu": "32", "memory": "128Gi"}, "10%"),
        ("prod", ["on-demand"], {"cpu": "128", "memory": "512Gi"}, "1"),
    ],
)
def test_node_pool_per_environment(synthesized, env_name, capacity, limits, budget):
    [pool] = objects_of_kind(synthesized, env_name, "NodePool")
    spec = pool["spec"]
    requirements = {r["key"]: r for r in spec["template"]["spec"]["requirements"]}
    assert requirements["karpenter.sh/capacity-type"]["values"] == capacity
    assert requirements["karpenter.k8s.aws/instance-generation"] == {
        "key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": ["4"]}
    assert requirements["kubernetes.io/arch"]["values"] == ["amd64"]
    assert spec["limits"] == limits
    assert spec["disruption"] == {"consolidationPolicy": "WhenEmptyOrUnderutilized", "consolidateAfter": "1m",
                                  "budgets": [{"nodes": budget}]}
    assert spec["template"]["spec"]["expireAfter"] == "720h"
    assert spec["template"]["spec"]["nodeClassRef"] == {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "burrow"}


@pytest.mark.parametrize("env_name", CLOUD)
def test_node_class_finds_the_clusters_subnets_and_group_and_hardens_its_nodes(synthesized, env_name):
    for view in config(env_name).regional():  # every region finds its own cluster's subnets and roles
        prefix = view.stack_prefix
        [node_class] = objects_of_kind(synthesized, env_name, "EC2NodeClass", prefix)
        spec = node_class["spec"]
        discovery = [{"tags": {"karpenter.sh/discovery": f"burrow-{prefix}"}}]
        assert spec["subnetSelectorTerms"] == spec["securityGroupSelectorTerms"] == discovery
        assert spec["metadataOptions"]["httpTokens"] == "required"
        assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
        assert spec["blockDeviceMappings"][0]["ebs"]["encrypted"] is True
        assert spec["role"] == f"burrow-{prefix}-karpenter-node"  # plain text: the exported YAML reads the same every run
        common = synthesized.stack(f"{prefix}-common")
        private = [s for s in resources(common, "aws_subnet").values() if "-private-" in s["tags"]["Name"]]
        public = [s for s in resources(common, "aws_subnet").values() if "-public-" in s["tags"]["Name"]]
        assert private and all(s["tags"]["karpenter.sh/discovery"] == f"burrow-{prefix}" for s in private)
        assert all("karpenter.sh/discovery" not in s["tags"] for s in public)
        [tag] = resources(synthesized.stack(f"{prefix}-cluster"), "aws_ec2_tag").values()
        assert tag["key"] == "karpenter.sh/discovery" and "cluster_security_group_id" in tag["resource_id"]


@pytest.mark.parametrize("env_name", CLOUD)
def test_workloads_run_on_the_pool_and_brokers_on_on_demand_capacity(synthesized, env_name):
    pods = {o["metadata"]["name"]: o["spec"]["template"]["spec"] for o in objects_of_kind(synthesized, env_name, "Deployment")}
    assert pods["producer"]["nodeSelector"] == pods["consumer"]["nodeSelector"] == {"karpenter.sh/nodepool": "burrow"}
    broker = synthesized.rabbitmq_values(env_name)
    assert broker["nodeSelector"] == {"karpenter.sh/nodepool": "burrow", "karpenter.sh/capacity-type": "on-demand"}
    if config(env_name).rabbitmq.anti_affinity == "hard":
        assert broker["podAntiAffinityPreset"] == "hard"
        assert broker["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "DoNotSchedule"


@pytest.mark.parametrize("env_name", ["qa", "prod"])
def test_interruptions_reach_karpenter_through_its_queue(synthesized, env_name):
    cluster = synthesized.stack(f"{env_name}-cluster")
    [queue] = resources(cluster, "aws_sqs_queue").values()
    assert queue["name"] == f"burrow-{env_name}-karpenter"
    assert queue["message_retention_seconds"] == 300 and queue["sqs_managed_sse_enabled"] is True
    patterns = sorted(json.loads(r["event_pattern"])["detail-type"][0] for r in resources(cluster, "aws_cloudwatch_event_rule").values())
    assert patterns == ["AWS Health Event", "EC2 Capacity Reservation Instance Interruption Warning",
                        "EC2 Instance Rebalance Recommendation", "EC2 Instance State-change Notification",
                        "EC2 Spot Instance Interruption Warning"]
    targets = resources(cluster, "aws_cloudwatch_event_target").values()
    assert len(targets) == 5 and all("aws_sqs_queue" in t["arn"] for t in targets)
    [queue_policy] = resources(cluster, "aws_sqs_queue_policy").values()
    statements = policy(queue_policy)["Statement"]
    assert statements[0]["Principal"]["Service"] == ["events.amazonaws.com", "sqs.amazonaws.com"]
    assert statements[1]["Effect"] == "Deny" and statements[1]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize("env_name", ["qa", "prod"])
def test_karpenter_roles_are_scoped_to_this_cluster(synthesized, env_name):
    cluster = synthesized.stack(f"{env_name}-cluster")
    roles = {r["name"]: r for r in resources(cluster, "aws_iam_role").values()}
    node_role = roles[f"burrow-{env_name}-karpenter-node"]
    assert json.loads(node_role["assume_role_policy"])["Statement"][0]["Principal"] == {"Service": "ec2.amazonaws.com"}
    [entry] = resources(cluster, "aws_eks_access_entry").values()
    assert entry["type"] == "EC2_LINUX" and "karpenter" in entry["principal_arn"]
    [controller] = [p for p in resources(cluster, "aws_iam_role_policy").values() if p.get("name") == "karpenter-controller"]
    assert len(controller["policy"]) < 10240  # IAM's limit for a role's inline policies
    statements = {s["Sid"]: s for s in policy(controller)["Statement"]}
    assert statements["PassNodeIAMRole"]["Resource"].startswith("${aws_iam_role.")
    assert statements["APIServerEndpointDiscovery"]["Resource"].endswith(f":cluster/burrow-{env_name}")
    owned = {f"aws:ResourceTag/kubernetes.io/cluster/burrow-{env_name}": "owned"}
    assert statements["ScopedDeletion"]["Condition"]["StringEquals"] == owned
    trust = json.dumps(synthesized.stack(f"{env_name}-cluster")["data"]["aws_iam_policy_document"])
    assert "system:serviceaccount:kube-system:karpenter" in trust


# --- Velero ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("env_name", "expire_days"), [("qa", 14), ("uat", 14), ("preprod", 21), ("prod", 97)])
def test_backup_bucket_lives_in_the_common_layer_encrypted_private_and_expiring_after_retention(
    synthesized, env_name, expire_days
):
    common = synthesized.stack(f"{env_name}-common")
    account = config(env_name).aws.account_id
    buckets = {key: b for key, b in resources(common, "aws_s3_bucket").items() if "backups" in key}
    [(key, bucket)] = buckets.items()
    assert bucket["bucket"] == f"burrow-{env_name}-backups-{account}"
    assert bucket["lifecycle"]["prevent_destroy"] is True

    def of_bucket(kind: str) -> dict:
        [found] = [r for r in resources(common, kind).values() if key in r["bucket"]]
        return found

    sse = of_bucket("aws_s3_bucket_server_side_encryption_configuration")["rule"][0]
    assert sse["apply_server_side_encryption_by_default"]["kms_master_key_id"].startswith("${aws_kms_key.")
    assert of_bucket("aws_s3_bucket_versioning")["versioning_configuration"]["status"] == "Enabled"
    assert all(of_bucket("aws_s3_bucket_public_access_block")[k] is True
               for k in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"))
    assert policy(of_bucket("aws_s3_bucket_policy"))["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    rule = of_bucket("aws_s3_bucket_lifecycle_configuration")["rule"][0]
    assert rule["expiration"] == [{"days": expire_days}]
    assert rule["noncurrent_version_expiration"] == [{"noncurrent_days": 7}]


@pytest.mark.parametrize("env_name", ["qa", "prod"])
def test_velero_role_reaches_only_its_bucket_key_and_this_clusters_snapshots(synthesized, env_name):
    cluster = synthesized.stack(f"{env_name}-cluster")
    [velero] = [p for p in resources(cluster, "aws_iam_role_policy").values() if p.get("name") == "velero"]
    statements = {s["Sid"]: s for s in policy(velero)["Statement"]}
    assert statements["UseTheBucket"]["Resource"].endswith("/*") and "backups" in statements["UseTheBucket"]["Resource"]
    assert "*" not in statements["ListTheBucket"]["Resource"].replace("${", "")
    ours = {"StringEquals": {"aws:ResourceTag/burrow.dev/cluster": f"burrow-{env_name}"}}
    for sid in ("SnapshotThisClustersVolumes", "RestoreFromThisClustersSnapshots", "DeleteThisClustersSnapshots"):
        assert statements[sid]["Condition"] == ours, sid
    ebs = next(a for a in resources(cluster, "aws_eks_addon").values() if a["addon_name"] == "aws-ebs-csi-driver")
    assert json.loads(ebs["configuration_values"]) == {"controller": {"extraVolumeTags": {"burrow.dev/cluster": f"burrow-{env_name}"}}}
    trust = json.dumps(cluster["data"]["aws_iam_policy_document"])
    assert "system:serviceaccount:velero:velero" in trust


@pytest.mark.parametrize("env_name", CLOUD)
def test_velero_runs_with_the_aws_plugin_by_irsa_and_one_location_of_each_kind(synthesized, env_name):
    release = releases(synthesized, env_name)["velero"]
    assert release["version"] == VELERO_VERSION and release["namespace"] == "velero"
    values = values_of(release)
    # production pins it by the release's digest (tests/burrow/test_addon_digests.py)
    assert [c["image"].split("@")[0] for c in values["initContainers"]] == [PLUGIN_IMAGE]
    assert values["credentials"] == {"useSecret": False}
    assert values["serviceAccount"]["server"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("${")
    [location] = values["configuration"]["backupStorageLocation"]
    account = config(env_name).aws.account_id
    assert location["bucket"] == f"burrow-{env_name}-backups-{account}" and location["default"] is True
    assert location["config"] == {"region": config(env_name).aws.region}
    assert [s["provider"] for s in values["configuration"]["volumeSnapshotLocation"]] == ["aws"]
    assert values["deployNodeAgent"] is False


@pytest.mark.parametrize(
    ("env_name", "expected"),
    [
        ("qa", {"burrow-daily": ("0 3 * * *", "168h0m0s")}),
        ("preprod", {"burrow-daily": ("0 3 * * *", "336h0m0s")}),
        ("prod", {"burrow-daily": ("0 3 * * *", "720h0m0s"), "burrow-weekly": ("0 4 * * 0", "2160h0m0s")}),
    ],
)
def test_schedules_back_up_the_app_namespace_with_its_volumes_for_the_tiers_retention(synthesized, env_name, expected):
    schedules = {s["metadata"]["name"]: s for s in objects_of_kind(synthesized, env_name, "Schedule")}
    assert {name: (s["spec"]["schedule"], s["spec"]["template"]["ttl"]) for name, s in schedules.items()} == expected
    for schedule in schedules.values():
        template = schedule["spec"]["template"]
        assert template["includedNamespaces"] == [config(env_name).namespace]
        assert template["snapshotVolumes"] is True
        assert schedule["metadata"]["namespace"] == "velero"


def test_backup_alerts_per_schedule_fire_on_failure_and_on_silence(synthesized):
    [rule] = [o for o in objects_of_kind(synthesized, "prod", "PrometheusRule") if o["metadata"]["name"] == "burrow-backups"]
    alerts = {a["alert"]: a for group in rule["spec"]["groups"] for a in group["rules"]}
    assert set(alerts) == {"BurrowBackupDailyFailed", "BurrowBackupDailyMissing", "BurrowBackupWeeklyFailed",
                           "BurrowBackupWeeklyMissing"}
    assert '> 93600 or absent(velero_backup_last_successful_timestamp{schedule="burrow-daily"})' in alerts[
        "BurrowBackupDailyMissing"]["expr"]
    assert "> 612000" in alerts["BurrowBackupWeeklyMissing"]["expr"]
    assert alerts["BurrowBackupDailyMissing"]["labels"]["severity"] == "critical"


# --- Guardrails --------------------------------------------------------------------------------

TOKEN_CLUSTER = TokenCluster(
    name="burrow-prod", endpoint="https://example.invalid", certificate_authority="Y2E=", region="eu-west-1", version="1.33",
    node_autoscaling=NodeAutoscalingAccess("burrow-prod", "arn:aws:iam::345678901234:role/k", "node", "queue", "burrow-prod"),
    backups=BackupAccess("bucket", "eu-west-1", "arn:aws:iam::345678901234:role/v"),
)


def addons_layer(tmp_path, config) -> App:
    app = App(outdir=str(tmp_path))
    AddOnsLayer(app, config, cluster=TOKEN_CLUSTER, addons=configured_addons(config, TOKEN_CLUSTER))
    return app


def prod_with_karpenter(**update):
    config = env("prod")
    eks = config.cluster.eks
    karpenter = eks.karpenter.model_copy(update=update)
    cluster = config.cluster.model_copy(update={"eks": eks.model_copy(update={"karpenter": karpenter})})
    return config.model_copy(update={"cluster": cluster})


def test_the_shipped_production_node_pool_passes(tmp_path):
    assert synth_error(addons_layer(tmp_path, env("prod")), tmp_path) is None


@pytest.mark.parametrize(
    ("update", "rule", "advice"),
    [
        ({"limits": None}, "nodepool-limits", "set limits on cpu and memory (cluster.eks.karpenter.limits)"),
        ({"disruption_budget": None}, "nodepool-disruption-budget", "set a disruption budget"),
        ({"capacity_types": ["spot", "on-demand"]}, "nodepool-on-demand", "capacity types spot, on-demand; production runs on on-demand only"),
    ],
)
def test_production_node_pool_rules(tmp_path, update, rule, advice):
    [line] = violations(synth_error(addons_layer(tmp_path, prod_with_karpenter(**update)), tmp_path))
    assert line.startswith(f"prod-addons: prod-addons/karpenter/node-pool: [{rule}] NodePool burrow: ")
    assert advice in line


def test_spot_in_production_passes_with_a_waiver_whose_reason_is_reported(tmp_path):
    """An environment file's waiver names its construct by layer and path; the addons stack records it."""
    from burrow.config.schema import WaiverConfig

    config = prod_with_karpenter(capacity_types=["spot", "on-demand"])
    waiver = WaiverConfig(rule="nodepool-on-demand", path="addons/karpenter/node-pool",
                          reason="the consumers are idempotent and the brokers stay on on-demand")
    config = config.model_copy(update={"guardrails": config.guardrails.model_copy(update={"waivers": [waiver]})})
    app = addons_layer(tmp_path, config)
    assert synth_error(app, tmp_path) is None
    [stack] = [s for s in app.node.children if s.node.id == "prod-addons"]
    assert [(f.path, f.rule, reason) for f, reason in stack.guardrails.waived] == [
        ("prod-addons/karpenter/node-pool", "nodepool-on-demand", waiver.reason)]
    recorded = json.loads((tmp_path / "stacks" / "prod-addons" / "cdk.tf.json").read_text())["//"]
    assert recorded["burrow_guardrail_waivers"] == [
        {"rule": "nodepool-on-demand", "path": "prod-addons/karpenter/node-pool", "reason": waiver.reason}]


def test_staging_may_use_spot(tmp_path):
    assert synth_error(addons_layer(tmp_path, env("qa")), tmp_path) is None


# --- Bad input ---------------------------------------------------------------------------------




def test_backups_enabled_without_a_schedule_are_refused():
    from burrow.config.schema import BackupsConfig
    from burrow.errors import PropsError

    with pytest.raises(PropsError, match="^BackupsConfig: props=\\(the props together\\) is invalid: backups are enabled "
                                         "but no schedule is configured"):
        BackupsConfig(enabled=True, schedules={})


def test_backups_on_an_existing_cluster_are_refused(env_dir):  # noqa: F811
    write(env_dir, "dev", (env_dir / "dev.yaml").read_text().replace("backups:\n  enabled: false", "backups:\n  enabled: true"))
    assert error_for(env_dir, "dev").endswith(
        "dev.yaml: backups.enabled = True: backups need an EKS environment (an S3 bucket and EBS snapshots); "
        "set backups.enabled: false")


def test_brokers_beyond_what_karpenters_limits_allow_are_refused(env_dir):  # noqa: F811
    text = (env_dir / "prod.yaml").read_text().replace("limits: {cpu: 128, memory_gib: 512}", "limits: {cpu: 4, memory_gib: 64}")
    write(env_dir, "prod", text)
    assert error_for(env_dir, "prod") == (
        f"{env_dir / 'prod.yaml'}: rabbitmq.replicas = 3: 3 brokers with hard anti-affinity need 3 nodes, but Karpenter's "
        "limits allow at most 2 of its smallest instance; raise cluster.eks.karpenter.limits, or set anti_affinity: soft"
    )


@pytest.mark.parametrize("cron", ["0 3 * * *", "*/15 * * * *", "0 0-6/2 1,15 * 1-5", "@daily", "30 4 * 12 7"])
def test_valid_cron_expressions_pass(cron):
    assert cron_problem(cron) is None


@pytest.mark.parametrize(
    ("cron", "problem"),
    [
        ("* * * *", "has 4 fields; a schedule has 5 (minute hour day-of-month month day-of-week) or is one of @"),
        ("60 * * * *", "minute field '60': values must lie between 0 and 59, ranges ascending"),
        ("0 0 0 * *", "day of month field '0': values must lie between 1 and 31, ranges ascending"),
        ("0 0 * 13 *", "month field '13': values must lie between 1 and 12, ranges ascending"),
        ("5-1 * * * *", "minute field '5-1': values must lie between 0 and 59, ranges ascending"),
        ("*/0 * * * *", "minute field '*/0': the step after '/' must be a positive number"),
        ("0 0 * * 1-2-3", "day of week field '1-2-3': use numbers, ranges (a-b), lists (a,b), steps (*/n) or *"),
        ("@often", "has 1 fields; a schedule has 5"),
    ],
)
def test_invalid_cron_expressions_are_named(cron, problem):
    """The message names the field, the text and what is allowed (it reaches the user as is)."""
    assert cron_problem(cron).startswith(problem)
