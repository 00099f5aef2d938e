"""The production-grade app layer: HA RabbitMQ, hardened and autoscaled workloads, isolation."""

from __future__ import annotations

import pytest

from burrow.config.loader import load_environment
from tests.burrow.test_properties import rabbitmq_values
from tests.conftest import APP_STACK_ENVIRONMENTS, ENVIRONMENTS
from tests.support.services import ROOT

CLOUD = [env for env in ENVIRONMENTS if env != "dev"]


def objects_of(synthesized, env: str, kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in synthesized.objects(env) if o["kind"] == kind}


def pod_spec(synthesized, env: str, name: str) -> dict:
    return objects_of(synthesized, env, "Deployment")[name]["spec"]["template"]["spec"]


@pytest.mark.parametrize("env", ["preprod", "prod"])
def test_production_rabbitmq_is_highly_available(synthesized, env):
    values = rabbitmq_values(synthesized, env)
    assert values["replicaCount"] == 3
    assert values["pdb"] == {"create": True, "maxUnavailable": 1}
    assert values["podAntiAffinityPreset"] == "hard"
    [zone] = values["topologySpreadConstraints"]
    assert (zone["topologyKey"], zone["whenUnsatisfiable"]) == ("topology.kubernetes.io/zone", "DoNotSchedule")
    assert values["persistence"]["enabled"] is True and values["persistence"]["storageClass"] == "gp3"
    assert values["clustering"]["partitionHandling"] == "pause_minority"
    assert values["memoryHighWatermark"] == {"enabled": True, "type": "relative", "value": 0.4}


def test_dev_rabbitmq_is_single_and_small(synthesized):
    values = rabbitmq_values(synthesized, "dev")
    assert values["replicaCount"] == 1
    assert "pdb" not in values and "topologySpreadConstraints" not in values
    assert values["persistence"]["enabled"] is False


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_workload_pods_are_hardened(synthesized, env):
    for name in ("producer", "consumer"):
        spec = pod_spec(synthesized, env, name)
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == 10001
        [container] = spec["containers"]
        ctx = container["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True and ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"] == {"drop": ["ALL"]} and ctx["seccompProfile"] == {"type": "RuntimeDefault"}
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        # Probed where the services answer, a minute to start; requests and limits exactly as configured.
        health, ready = {"path": "/health", "port": "http"}, {"path": "/ready", "port": "http"}
        probes = {key: container[key] for key in ("livenessProbe", "readinessProbe", "startupProbe")}
        assert [p["httpGet"] for p in probes.values()] == [health, ready, health]
        assert probes["startupProbe"]["periodSeconds"] * probes["startupProbe"]["failureThreshold"] == 60
        assert all(p["timeoutSeconds"] >= 1 and p["failureThreshold"] >= 1 for p in probes.values())
        configured = getattr(load_environment(env, ROOT / "environments").apps, name).resources
        assert container["resources"] == configured.model_dump(mode="json", exclude_none=True)


@pytest.mark.parametrize("env", APP_STACK_ENVIRONMENTS)
def test_namespace_enforces_restricted_pod_security(synthesized, env):
    namespace = next(iter(synthesized.stack(f"{env}-app")["resource"]["kubernetes_namespace_v1"].values()))
    labels = namespace["metadata"]["labels"]
    assert all(labels[f"pod-security.kubernetes.io/{m}"] == "restricted" for m in ("enforce", "audit", "warn"))


@pytest.mark.parametrize("env", CLOUD)
def test_at_least_two_replicas_with_pdbs_outside_dev(synthesized, env):
    pdbs = objects_of(synthesized, env, "PodDisruptionBudget")
    assert set(pdbs) == {"producer", "consumer"}
    assert all(p["spec"]["maxUnavailable"] == 1 for p in pdbs.values())
    assert objects_of(synthesized, env, "HorizontalPodAutoscaler")["producer"]["spec"]["minReplicas"] >= 2
    assert objects_of(synthesized, env, "ScaledObject")["consumer"]["spec"]["minReplicaCount"] >= 2


@pytest.mark.parametrize(("env", "hard"), [("qa", False), ("uat", False), ("preprod", True), ("prod", True)])
def test_spread_over_nodes_and_zones_is_hard_from_preprod(synthesized, env, hard):
    constraints = {c["topologyKey"]: c for c in pod_spec(synthesized, env, "consumer")["topologySpreadConstraints"]}
    assert set(constraints) == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    expected = "DoNotSchedule" if hard else "ScheduleAnyway"
    assert all(c["whenUnsatisfiable"] == expected for c in constraints.values())


def test_dev_spreads_softly_over_nodes_only(synthesized):
    [constraint] = pod_spec(synthesized, "dev", "consumer")["topologySpreadConstraints"]
    assert (constraint["topologyKey"], constraint["whenUnsatisfiable"]) == ("kubernetes.io/hostname", "ScheduleAnyway")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_autoscaled_deployments_leave_the_replica_count_to_the_autoscaler(synthesized, env):
    for name in ("producer", "consumer"):
        assert "replicas" not in objects_of(synthesized, env, "Deployment")[name]["spec"]
    strategy = objects_of(synthesized, env, "Deployment")["producer"]["spec"]["strategy"]
    assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_producer_scales_on_cpu(synthesized, env):
    hpa = objects_of(synthesized, env, "HorizontalPodAutoscaler")["producer"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "producer"}
    assert hpa["spec"]["metrics"][0]["resource"] == {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}
    assert hpa["spec"]["maxReplicas"] == 6


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_consumer_scales_on_queue_depth_through_keda_with_a_secret_in_kedas_namespace(synthesized, env):
    """KEDA may read Secrets only in its own namespace (`restrict.secret`): the ScaledObject names a
    ClusterTriggerAuthentication whose Secret holds the AMQP URI in `keda`, never the app's Secret."""
    scaled = objects_of(synthesized, env, "ScaledObject")["consumer"]
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"] == {"protocol": "amqp", "queueName": "burrow.work", "mode": "QueueLength", "value": "50"}
    assert "host" not in trigger["metadata"] and "password" not in str(trigger)
    name = f"burrow-{env}-rabbitmq"
    assert trigger["authenticationRef"] == {"name": name, "kind": "ClusterTriggerAuthentication"}
    assert objects_of(synthesized, env, "TriggerAuthentication") == {}
    auth = objects_of(synthesized, env, "ClusterTriggerAuthentication")[name]
    assert auth["spec"]["secretTargetRef"] == [{"parameter": "host", "name": name, "key": "host"}]
    if env == "dev":  # Terraform generates dev's credentials, and writes KEDA's copy
        secrets = synthesized.stack("dev-app")["resource"]["kubernetes_secret_v1"].values()
        [secret] = [s for s in secrets if s["metadata"]["name"] == name]
        assert secret["metadata"]["namespace"] == "keda"
        assert secret["data"]["host"].startswith("amqp://burrow-monitoring:${random_password.")
    else:  # External Secrets builds it in KEDA's namespace from Secrets Manager
        external = objects_of(synthesized, env, "ExternalSecret")[name]
        assert external["metadata"]["namespace"] == "keda"
        assert external["spec"]["target"]["template"]["data"]["host"] == (
            f"amqp://burrow-monitoring:{{{{ .password }}}}@rabbitmq.burrow-{env}.svc.cluster.local:5672/")
    assert (scaled["spec"]["maxReplicaCount"], scaled["spec"]["cooldownPeriod"]) == (10, 120)


@pytest.mark.parametrize("env", APP_STACK_ENVIRONMENTS)
def test_custom_resources_ship_in_the_object_release_after_the_addons(synthesized, env):
    app = synthesized.stack(f"{env}-app")
    assert "kubernetes_manifest" not in app.get("resource", {})
    consumer_release = next(r for r in app["resource"]["helm_release"].values() if r["name"] == "consumer")
    assert "kind: ScaledObject" in consumer_release["values"][0]
    built = next(b for b in synthesized.built if b.env.name == env)
    assert f"{env}-addons" in [d.node.id for d in built.app.dependencies]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_network_is_default_deny_with_only_the_needed_paths(synthesized, env):
    policies = objects_of(synthesized, env, "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": []}
    dns = policies["allow-dns"]["spec"]["egress"][0]
    assert {p["port"] for p in dns["ports"]} == {53}
    for worker in ("producer", "consumer"):
        spec = policies[worker]["spec"]
        assert spec["egress"] == [
            {
                "to": [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "rabbitmq", "app.kubernetes.io/instance": "rabbitmq"}}}],
                "ports": [{"protocol": "TCP", "port": 5672}],
            }
        ]
    broker = policies["rabbitmq-broker"]["spec"]
    client_rule = broker["ingress"][0]
    assert client_rule["from"] == [{"podSelector": {"matchLabels": {"burrow.dev/rabbitmq-client": "rabbitmq"}}}]
    cluster_ports = {p["port"] for p in broker["ingress"][1]["ports"]}
    assert cluster_ports == {4369, 25672, 5672}
    worker_labels = objects_of(synthesized, env, "Deployment")["consumer"]["spec"]["template"]["metadata"]["labels"]
    assert worker_labels["burrow.dev/rabbitmq-client"] == "rabbitmq"


def test_images_pull_always_and_are_never_latest(synthesized):
    for env in ENVIRONMENTS:
        for name in ("producer", "consumer"):
            [container] = pod_spec(synthesized, env, name)["containers"]
            assert container["imagePullPolicy"] == "Always"
            assert not container["image"].endswith(":latest")
