"""Monitoring per environment: the stack in the add-ons, scrape targets, alerts, dashboard, routing."""

from __future__ import annotations

import json

import pytest
import yaml
from cdktf import App

from burrow.config.loader import load_environment
from burrow.config.schema import AlertReceiver
from burrow.k8s.release import terraform_unescape
from burrow.spi import KubeconfigCluster
from burrow.stacks.app import AppLayer
from burrow.synth import environment_objects
from tests.burrow.test_properties import rabbitmq_values
from tests.conftest import ENVIRONMENTS
from tests.support.services import ROOT

MONITORED = [env for env in ENVIRONMENTS if env != "dev"]
WORKER_ALERTS = {
    "producer": {"BurrowProducerRestarting", "BurrowProducerNotReady", "BurrowPublishConfirmsFailing", "BurrowPublishRejected"},
    "consumer": {"BurrowConsumerRestarting", "BurrowConsumerNotReady", "BurrowConsumersAbsent", "BurrowQueueBacklog", "BurrowDeadLetters"},
}


def releases(synthesized, stack: str) -> dict[str, dict]:
    return {r["name"]: r for r in synthesized.stack(stack)["resource"].get("helm_release", {}).values()}


def objects_of(synthesized, env: str, kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in synthesized.objects(env) if o["kind"] == kind}


def alerts(rule: dict) -> dict[str, dict]:
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


def test_dev_is_unmonitored_by_default(synthesized):
    assert set(releases(synthesized, "dev-addons")) == {"metrics-server", "keda"}


@pytest.mark.parametrize("env", MONITORED)
def test_the_monitoring_stack_is_installed_with_a_generated_grafana_password(synthesized, env):
    addons = releases(synthesized, f"{env}-addons")
    stack = addons["kube-prometheus-stack"]
    assert (stack["repository"], stack["version"]) == ("https://prometheus-community.github.io/helm-charts", "88.5.3")
    values = yaml.safe_load(stack["values"][0])
    assert values["grafana"]["admin"]["existingSecret"] == "grafana-admin"
    assert "adminPassword" not in values["grafana"]
    # Cloud environments: generated in Secrets Manager, delivered by External Secrets (never in state).
    admin = next(r for r in synthesized.stack(f"{env}-addons")["resource"]["helm_release"].values()
                 if r["name"] == "grafana-admin")
    (external,) = yaml.safe_load(terraform_unescape(admin["values"][0]))["objects"]
    assert external["kind"] == "ExternalSecret"
    assert external["spec"]["dataFrom"] == [{"extract": {"key": f"burrow/{env}/grafana"}}]
    assert external["spec"]["target"]["template"]["data"] == {"admin-user": "admin", "admin-password": "{{ .admin_password }}"}
    assert "random_password" not in synthesized.stack(f"{env}-addons")["resource"]
    assert values["prometheus"]["prometheusSpec"]["ruleSelectorNilUsesHelmValues"] is False
    assert ("loki" in addons) == (env == "prod")


def test_retention_and_storage_come_from_the_environment(synthesized):
    prod = yaml.safe_load(releases(synthesized, "prod-addons")["kube-prometheus-stack"]["values"][0])["prometheus"]["prometheusSpec"]
    qa = yaml.safe_load(releases(synthesized, "qa-addons")["kube-prometheus-stack"]["values"][0])["prometheus"]["prometheusSpec"]
    assert (prod["retention"], qa["retention"]) == ("30d", "15d")
    assert prod["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"]["storage"] == "200Gi"
    assert prod["storageSpec"]["volumeClaimTemplate"]["spec"]["storageClassName"] == "gp3"


@pytest.mark.parametrize("env", MONITORED)
def test_services_and_broker_are_scraped(synthesized, env):
    monitors = objects_of(synthesized, env, "ServiceMonitor")
    assert set(monitors) == {"producer", "consumer"}
    assert monitors["consumer"]["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "30s"}]
    broker = rabbitmq_values(synthesized, env)["metrics"]["serviceMonitor"]
    assert broker["default"]["enabled"] and broker["detailed"]["enabled"]
    assert broker["detailed"]["family"] == ["queue_coarse_metrics", "queue_consumer_count"]


def test_dev_has_no_scrape_targets_or_rules(synthesized):
    assert objects_of(synthesized, "dev", "ServiceMonitor") == {}
    assert objects_of(synthesized, "dev", "PrometheusRule") == {}
    assert rabbitmq_values(synthesized, "dev")["metrics"]["serviceMonitor"]["default"]["enabled"] is False


@pytest.mark.parametrize("env", MONITORED)
def test_each_owner_brings_its_alerts_with_severity_summary_and_runbook(synthesized, env):
    rules = objects_of(synthesized, env, "PrometheusRule")
    assert set(rules) == {"producer", "consumer", "rabbitmq-broker", "burrow-backups"}
    rules.pop("burrow-backups")  # Velero's, in its namespace (test_day2)
    for worker, expected in WORKER_ALERTS.items():
        assert set(alerts(rules[worker])) == expected
    broker = set(alerts(rules["rabbitmq-broker"]))
    assert {"RabbitMQNodeDown", "RabbitMQMemoryAlarm", "RabbitMQDiskAlarm"} <= broker
    assert ("RabbitMQPartitioned" in broker) == (env in ("preprod", "prod"))
    for rule in rules.values():
        for alert in alerts(rule).values():
            assert alert["labels"]["severity"] in ("critical", "warning")
            assert alert["annotations"]["summary"] and len(alert["annotations"]["runbook"]) > 40
            assert f'namespace="burrow-{env}"' in alert["expr"]


def test_thresholds_come_from_the_environment(synthesized):
    prod = alerts(objects_of(synthesized, "prod", "PrometheusRule")["consumer"])["BurrowQueueBacklog"]
    qa = alerts(objects_of(synthesized, "qa", "PrometheusRule")["consumer"])["BurrowQueueBacklog"]
    assert (prod["expr"].endswith("> 5000"), prod["for"]) == (True, "5m")
    assert (qa["expr"].endswith("> 1000"), qa["for"]) == (True, "10m")
    partition = alerts(objects_of(synthesized, "prod", "PrometheusRule")["rabbitmq-broker"])["RabbitMQPartitioned"]
    assert partition["expr"] == 'count(rabbitmq_identity_info{namespace="burrow-prod"}) < 3'


@pytest.mark.parametrize("env", MONITORED)
def test_the_dashboard_is_a_configmap_for_grafanas_sidecar(synthesized, env):
    board = objects_of(synthesized, env, "ConfigMap")["burrow-dashboard"]
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    model = json.loads(board["data"]["burrow-dashboard.json"])
    assert [p["title"] for p in model["panels"]] == [
        "Messages in and out",
        "Queue depth",
        "Processing time",
        "Consumers against KEDA's target",
        "Broker health",
        "Dead letters",
    ]
    assert [t["legendFormat"] for t in model["panels"][2]["targets"]] == ["p50", "p95", "p99"]


def test_alert_routing_goes_to_the_teams_receiver_by_secret_reference(tmp_path):
    env = load_environment("qa", ROOT / "environments")
    receiver = AlertReceiver.model_validate({"name": "orders-oncall", "webhook_url_secret": {"name": "oncall-webhook", "key": "url"}})
    env = env.model_copy(update={"monitoring": env.monitoring.model_copy(update={"receiver": receiver})})
    app = App(outdir=str(tmp_path))
    layer = AppLayer(app, env, cluster=KubeconfigCluster(kubeconfig_path="k", context="c", version="1.33"))
    app.synth()
    built = type("Built", (), {"stacks": (layer,)})
    [routing] = [o for o in environment_objects(built) if o["kind"] == "AlertmanagerConfig"]
    webhook = routing["spec"]["receivers"][0]["webhookConfigs"][0]
    assert webhook["urlSecret"] == {"name": "oncall-webhook", "key": "url"}
    assert routing["spec"]["route"]["receiver"] == "orders-oncall"
    assert "http" not in json.dumps(routing)


#: The labels Promtail's chart (6.16) gave every pod log line; Alloy must give the same.
PROMTAIL_LABELS = ("namespace", "pod", "container", "app", "instance", "component", "node_name", "job")


def test_alloy_ships_the_pod_logs_to_burrows_tenant_with_promtails_labels(synthesized):
    addons = releases(synthesized, "prod-addons")
    assert "promtail" not in addons
    release = addons["alloy"]
    assert (release["repository"], release["chart"], release["version"]) == (
        "https://grafana.github.io/helm-charts", "alloy", "1.11.1")
    pipeline = yaml.safe_load(terraform_unescape(release["values"][0]))["alloy"]["configMap"]["content"]
    for label in PROMTAIL_LABELS:
        assert f'target_label = "{label}"' in pipeline, label
    assert 'url = "http://loki.monitoring.svc.cluster.local:3100/loki/api/v1/push"' in pipeline
    assert 'tenant_id = "burrow"' in pipeline
    # Each DaemonSet pod tails only its own node's pods (HOSTNAME is the node's name in the chart).
    assert 'field = "spec.nodeName=" + sys.env("HOSTNAME")' in pipeline
    assert "loki.source.kubernetes" in pipeline and "loki.source.file" not in pipeline


def test_alloy_runs_non_root_read_only_without_host_paths(synthesized):
    values = yaml.safe_load(terraform_unescape(releases(synthesized, "prod-addons")["alloy"]["values"][0]))
    pod = values["global"]["podSecurityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0 and pod["seccompProfile"] == {"type": "RuntimeDefault"}
    container = values["alloy"]["securityContext"]
    assert container == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
    assert "varlog" not in values["alloy"].get("mounts", {}) and "dockercontainers" not in values["alloy"]["mounts"]
    assert all("hostPath" not in volume for volume in values["controller"]["volumes"]["extra"])
    assert values["alloy"]["enableReporting"] is False
    # Its state directory is a writable emptyDir, the root filesystem being read-only.
    [mount] = values["alloy"]["mounts"]["extra"]
    assert mount["mountPath"] == values["alloy"]["storagePath"]


def test_only_alloy_pushes_to_loki_and_alloy_reaches_only_loki(synthesized):
    policies = {p["metadata"]["name"]: p["spec"] for p in
                yaml.safe_load(terraform_unescape(releases(synthesized, "prod-addons")["monitoring-network"]["values"][0]))["objects"]}
    assert "promtail" not in policies
    alloy = policies["alloy"]
    assert alloy["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "alloy"}}
    assert alloy["egress"] == [{"to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "loki"}}}],
                                "ports": [{"protocol": "TCP", "port": 3100}]}]


def test_alloy_reads_only_pods_and_their_logs(synthesized):
    values = yaml.safe_load(terraform_unescape(releases(synthesized, "prod-addons")["alloy"]["values"][0]))
    # The chart's defaults grant get/list/watch on every Secret and ConfigMap of the cluster.
    assert values["rbac"] == {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
                              "clusterRules": [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]}
