"""Monitoring add-ons: kube-prometheus-stack (Prometheus, Alertmanager, Grafana, kube-state-metrics)
and, where configured, Loki with Grafana Alloy shipping the pods' logs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_kubernetes.secret_v1 import SecretV1, SecretV1Metadata
from cdktf_cdktf_provider_random.password import Password
from cdktf_cdktf_provider_random.provider import RandomProvider

from burrow.addons import kinds as k
from burrow.addons.base import ClusterAddOn, HelmAddOn, owned_namespace
from burrow.addons.external_secrets import external_secret, store_ready
from burrow.addons.settings import MonitoringConfig
from burrow.addons.storage import STORAGE_CLASSES
from burrow.k8s import objects as k8s
from burrow.k8s.objects import DNS_PORTS, MANAGED_BY
from burrow.k8s.release import KubernetesObjects
from burrow.pins import ALLOY, KUBE_PROMETHEUS_STACK, LOKI
from burrow.scope import stack_singleton
from burrow.spi import ClusterInfo
from constructs import Construct

PROMETHEUS_COMMUNITY = KUBE_PROMETHEUS_STACK.repository
GRAFANA_ADMIN_SECRET = "grafana-admin"
LOKI_PORT = 3100
MONITORING_GROUP = "monitoring.coreos.com"

PROMETHEUS_KINDS = k.ChartKinds(
    chart="kube-prometheus-stack",
    kinds=(k.DEPLOYMENT, ("apps/v1", "DaemonSet"), ("batch/v1", "Job"), *k.CLUSTER_RBAC, *k.NAMESPACE_RBAC, *k.WEBHOOKS,
           *k.core("ConfigMap", "Secret", "Service", "ServiceAccount", "Pod"),  # Pod: Grafana's `helm test` hook
           *((f"{MONITORING_GROUP}/v1", kind) for kind in ("Alertmanager", "Prometheus", "PrometheusRule", "ServiceMonitor"))),
    crds=k.group_kinds(MONITORING_GROUP, "Alertmanager", "AlertmanagerConfig", "PodMonitor", "Probe", "Prometheus",
                     "PrometheusAgent", "PrometheusRule", "ScrapeConfig", "ServiceMonitor", "ThanosRuler"),
    secrets=("grafana.admin.existingSecret",),
    storage_classes=("prometheus.prometheusSpec.storageSpec.volumeClaimTemplate.spec.storageClassName",),
)
LOKI_KINDS = k.ChartKinds(
    chart="loki",
    kinds=(("apps/v1", "StatefulSet"), k.DEPLOYMENT, ("apps/v1", "DaemonSet"), *k.CLUSTER_RBAC,
           *k.core("ConfigMap", "Service", "ServiceAccount")),
    when={"monitoring.serviceMonitor.enabled": (k.SERVICE_MONITOR,)},
    storage_classes=("singleBinary.persistence.storageClass",),
)
ALLOY_KINDS = k.ChartKinds(
    chart="alloy",
    kinds=(("apps/v1", "DaemonSet"), *k.CLUSTER_RBAC, *k.core("ConfigMap", "Service", "ServiceAccount")),
    when={"serviceMonitor.enabled": (k.SERVICE_MONITOR,)},
)
#: The monitoring add-on's name: charts that render ServiceMonitors or PrometheusRules install after it.
MONITORING = "kube-prometheus-stack"
#: Loki runs multi-tenant; Burrow's logs are one tenant, named by Alloy and Grafana's data source.
LOKI_TENANT = "burrow"
PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093
OPERATOR_WEBHOOK_PORT = 10250  # the Prometheus operator's admission webhook (the chart's internalPort)
API_SERVER_PORTS = (443, 6443)
#: What Prometheus scrapes outside pods: kubelets (cAdvisor) and node-exporter (host network).
NODE_PORTS = (10250, 9100)
GRAFANA_PODS = {"app.kubernetes.io/name": "grafana"}
ALLOY_PODS = {"app.kubernetes.io/name": "alloy"}
LOKI_PODS = {"app.kubernetes.io/name": "loki"}


def loki_url(config: MonitoringConfig) -> str:
    return f"http://loki.{config.namespace}.svc.cluster.local:{LOKI_PORT}"


def loki_data_source(config: MonitoringConfig) -> dict[str, Any]:
    """Grafana's Loki data source, reading Burrow's tenant (the tenant id is a name, not a secret)."""
    return {"name": "Loki", "type": "loki", "uid": "loki", "access": "proxy", "url": loki_url(config),
            "jsonData": {"httpHeaderName1": "X-Scope-OrgID"}, "secureJsonData": {"httpHeaderValue1": LOKI_TENANT}}


def prometheus_values(config: MonitoringConfig, dashboard_namespaces: tuple[str, ...] = ()) -> dict[str, Any]:
    storage: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": config.storage_size}}}
    if config.storage_class:
        storage["storageClassName"] = config.storage_class
    prometheus_spec: dict[str, Any] = {
        "retention": config.retention,
        # Select every ServiceMonitor and PrometheusRule, not only the chart's own (Burrow's carry no release label).
        "serviceMonitorSelectorNilUsesHelmValues": False,
        "podMonitorSelectorNilUsesHelmValues": False,
        "ruleSelectorNilUsesHelmValues": False,
        "storageSpec": {"volumeClaimTemplate": {"spec": storage}},
    }
    if config.prometheus_resources:
        prometheus_spec["resources"] = config.prometheus_resources.model_dump()
    return {
        "prometheus": {"prometheusSpec": prometheus_spec},
        "alertmanager": {"alertmanagerSpec": {"alertmanagerConfigMatcherStrategy": {"type": "OnNamespace"}}},
        "grafana": {
            # The admin password is generated by Terraform into a Secret, never the chart's default.
            "admin": {"existingSecret": GRAFANA_ADMIN_SECRET, "userKey": "admin-user", "passwordKey": "admin-password"},
            # Grafana's sidecars read ConfigMaps and Secrets of its own namespace only (a Role, no
            # ClusterRole); dashboards also come from ConfigMaps of the namespaces listed, each of
            # which grants it a Role on ConfigMaps (`grafana_dashboard_reader`).
            "rbac": {"namespaced": True},
            "sidecar": {"dashboards": {"enabled": True, "label": "grafana_dashboard", "resource": "configmap",
                                       "searchNamespace": [config.namespace, *dashboard_namespaces]}},
            # With Loki on, the pods' logs are searchable next to the metrics.
            "additionalDataSources": [loki_data_source(config)] if config.loki.enabled else [],
        },
    }


@dataclass(frozen=True)
class MonitoringAddOn(ClusterAddOn):
    """kube-prometheus-stack in its namespace, with a generated Grafana admin password: from AWS
    Secrets Manager through External Secrets where the cluster has them, else from Terraform."""

    config: MonitoringConfig
    name: str = MONITORING
    version: str = KUBE_PROMETHEUS_STACK.version
    #: Namespaces whose `grafana_dashboard` ConfigMaps Grafana loads (each grants it a Role to read them).
    dashboard_namespaces: tuple[str, ...] = ()
    #: Where the Kubernetes API and the nodes answer (the private subnets on EKS); monitoring's pods may
    #: reach only these on the API and node ports. default: any address (kind and other clusters)
    cluster_cidrs: tuple[str, ...] = ()
    #: Digests of the chart's images by name (`HelmAddOn.digests`). default: none (the chart's tags)
    digests: Mapping[str, str] = field(default_factory=dict)

    def deploy(self, scope: Construct, cluster: ClusterInfo) -> Construct:
        holder = Construct(scope, self.name)
        providers = ClusterInfo.providers_of(scope)
        namespace = owned_namespace(scope, self.config.namespace)
        after_namespace = [namespace] if namespace is not None else []
        secret: ITerraformDependable
        if cluster.secrets is not None:
            # Generated in AWS Secrets Manager by the cluster layer; the value never enters Terraform.
            secret = KubernetesObjects(
                holder,
                "grafana-admin",
                {
                    "release_name": "grafana-admin",
                    "namespace": self.config.namespace,
                    "objects": [
                        external_secret(
                            GRAFANA_ADMIN_SECRET,
                            self.config.namespace,
                            cluster.secrets.secret("grafana"),
                            {"admin-user": "admin", "admin-password": "{{ .admin_password }}"},
                        )
                    ],
                },
                depends_on=[*after_namespace, *store_ready(scope)],
            ).release
        else:
            random = stack_singleton(scope, "random", lambda stack, id: RandomProvider(stack, id))
            password = Password(holder, "grafana-password", length=32, special=False, provider=random)
            secret = SecretV1(
                holder,
                "grafana-admin",
                metadata=SecretV1Metadata(
                    name=GRAFANA_ADMIN_SECRET, namespace=self.config.namespace, labels=dict(MANAGED_BY)
                ),
                data={"admin-user": "admin", "admin-password": password.result},
                provider=providers.kubernetes,
                depends_on=after_namespace or None,
            )
        chart = HelmAddOn(
            name=self.name,
            repository=PROMETHEUS_COMMUNITY,
            chart="kube-prometheus-stack",
            version=self.version,
            namespace=self.config.namespace,
            values=prometheus_values(self.config, self.dashboard_namespaces),
            after_if_present=(STORAGE_CLASSES,),
            digests=self.digests,
        )
        chart.release(holder, providers.helm, depends_on=[secret])
        KubernetesObjects(
            holder,
            "network",
            {
                "release_name": "monitoring-network",
                "namespace": self.config.namespace,
                "objects": monitoring_policies(self.config, self.cluster_cidrs),
            },
            depends_on=after_namespace,
        )
        return holder


#: Memory (MB) of Loki's memcached chunks cache. The chart (6.29 as 18.11) defaults to 8192 and requests
#: round(1.2 x that) = 9830 Mi for the cache pod: two thirds of a 16 GiB core node (prod's m6i.xlarge),
#: more than is free beside Prometheus, so the release could wait for a node until it times out and
#: rolls back (the monitoring namespace has no node selector, and Karpenter is installed in parallel).
#: A single-binary Loki on its own volume reads chunks from local disk; 1 GiB of cache (1229 Mi
#: requested, like the chart's results cache) is plenty.
LOKI_CHUNKS_CACHE_MB = 1024


def _cidr_rule(direction: str, cidrs: tuple[str, ...], *ports: int) -> dict[str, Any]:
    """A rule on `ports` to or from (`direction`) the `cidrs`, or any address when there are none."""
    rule: dict[str, Any] = {"ports": k8s.tcp_ports(*ports)}
    if cidrs:
        rule[direction] = [{"ipBlock": {"cidr": cidr}} for cidr in cidrs]
    return rule


def monitoring_policies(config: MonitoringConfig, cluster_cidrs: tuple[str, ...] = ()) -> list[k8s.K8sObject]:
    """The monitoring namespace denies everything, then admits exactly its paths: DNS and the API
    server for every pod (operators, sidecars, service discovery, the chart's hook jobs); Prometheus
    scrapes pods of every namespace and the nodes, and alerts Alertmanager; Alertmanager sends to its
    receivers (HTTPS); Grafana queries Prometheus and Loki; the API server calls the operator's
    webhook; with Loki, only Grafana and Alloy reach Loki's API (Alloy pushes as Burrow's tenant)."""
    ns = config.namespace
    operator = {"app": "kube-prometheus-stack-operator"}
    alertmanager = {"app.kubernetes.io/name": "alertmanager"}
    scraped = [{"from": [k8s.peer_pods(k8s.PROMETHEUS)]}]
    policies = [
        k8s.network_policy("default-deny", ns, {}, ingress=[], egress=[]),
        k8s.network_policy("allow-dns-and-api", ns, {}, egress=[
            {"to": [k8s.peer_namespace("kube-system")], "ports": DNS_PORTS}, _cidr_rule("to", cluster_cidrs, *API_SERVER_PORTS)]),
        k8s.network_policy("prometheus", ns, k8s.PROMETHEUS,
                           ingress=[{"from": [k8s.peer_pods(GRAFANA_PODS)], "ports": k8s.tcp_ports(PROMETHEUS_PORT)}],
                           egress=[{"to": [{"namespaceSelector": {}}]}, _cidr_rule("to", cluster_cidrs, *NODE_PORTS)]),
        k8s.network_policy("alertmanager", ns, alertmanager,
                           ingress=[{"from": [k8s.peer_pods(k8s.PROMETHEUS)], "ports": k8s.tcp_ports(ALERTMANAGER_PORT)},
                                    {"from": [k8s.peer_pods(alertmanager)]}, *scraped],
                           egress=[{"to": [k8s.peer_pods(alertmanager)]}, {"ports": k8s.tcp_ports(443)}]),
        k8s.network_policy("grafana", ns, GRAFANA_PODS, ingress=scraped, egress=[
            {"to": [k8s.peer_pods(k8s.PROMETHEUS)], "ports": k8s.tcp_ports(PROMETHEUS_PORT)},
            *([{"to": [k8s.peer_pods(LOKI_PODS)], "ports": k8s.tcp_ports(LOKI_PORT)}] if config.loki.enabled else [])]),
        k8s.network_policy("prometheus-operator", ns, operator, ingress=[
            _cidr_rule("from", cluster_cidrs, OPERATOR_WEBHOOK_PORT), *scraped]),
        k8s.network_policy("kube-state-metrics", ns, {"app.kubernetes.io/name": "kube-state-metrics"}, ingress=scraped),
    ]
    if config.loki.enabled:
        policies += [
            k8s.network_policy("loki", ns, LOKI_PODS, ingress=[
                {"from": [k8s.peer_pods(GRAFANA_PODS), k8s.peer_pods(ALLOY_PODS)], "ports": k8s.tcp_ports(LOKI_PORT)},
                {"from": [k8s.peer_pods(LOKI_PODS)]}, *scraped], egress=[{"to": [k8s.peer_pods(LOKI_PODS)]}]),
            k8s.network_policy("alloy", ns, ALLOY_PODS, ingress=scraped,
                               egress=[{"to": [k8s.peer_pods(LOKI_PODS)], "ports": k8s.tcp_ports(LOKI_PORT)}]),
        ]
    return policies


def loki(config: MonitoringConfig, digests: Mapping[str, str] | None = None) -> HelmAddOn:
    return HelmAddOn(
        name="loki",
        repository=LOKI.repository,
        chart="loki",
        version=LOKI.version,
        namespace=config.namespace,
        values={
            "deploymentMode": "Monolithic",  # the chart's name for SingleBinary from 12.0
            "loki": {
                # Every request names its tenant (X-Scope-OrgID); Alloy and Grafana name Burrow's.
                "auth_enabled": True,
                "commonConfig": {"replication_factor": 1},
                "storage": {"type": "filesystem"},
                "schemaConfig": {
                    "configs": [
                        {
                            "from": "2024-01-01",
                            "store": "tsdb",
                            "object_store": "filesystem",
                            "schema": "v13",
                            "index": {"prefix": "index_", "period": "24h"},
                        }
                    ]
                },
                "limits_config": {"retention_period": config.loki.retention},
                "compactor": {"retention_enabled": True, "delete_request_store": "filesystem"},
            },
            "singleBinary": {"replicas": 1, "persistence": {"size": config.loki.storage_size}},
            "chunksCache": {"allocatedMemory": LOKI_CHUNKS_CACHE_MB},
            **{part: {"replicas": 0} for part in ("read", "write", "backend")},
        },
        after_if_present=(STORAGE_CLASSES,),
        digests=digests or {},
    )


#: Where Alloy keeps its state (log positions): an emptyDir, the container's own filesystem being read-only.
#: It survives a container restart, not a new pod; a new pod reads each container's log from its start
#: (Alloy's default: no gap, at worst lines twice), where a hostPath would have needed root.
ALLOY_STORAGE = "/var/lib/alloy/data"
#: Alloy's image user (`alloy`, uid 473): the image creates it but does not switch to it.
ALLOY_USER = 473


def alloy_config(config: MonitoringConfig) -> str:
    """Alloy's pipeline: each Alloy tails, through the Kubernetes API, the containers of the pods on
    its own node (no hostPath, no root), labels them as Promtail's chart did (`namespace`, `pod`,
    `container`, `app`, `instance`, `component`, `node_name`, `job` = namespace/app) and pushes to
    Loki as Burrow's tenant."""
    first = "^;*([^;]+)(;.*)?$"  # the first of the source labels that is set
    meta = "__meta_kubernetes_pod_"
    rules = [  # (source labels, target label, regex, separator)
        ([f"{meta}controller_name"], "__tmp_controller_name", "([0-9a-z-.]+?)(-[0-9a-f]{8,10})?", ";"),
        ([f"{meta}label_app_kubernetes_io_name", f"{meta}label_app", "__tmp_controller_name", f"{meta}name"],
         "app", first, ";"),
        ([f"{meta}label_app_kubernetes_io_instance", f"{meta}label_instance"], "instance", first, ";"),
        ([f"{meta}label_app_kubernetes_io_component", f"{meta}label_component"], "component", first, ";"),
        ([f"{meta}node_name"], "node_name", "(.*)", ";"),
        (["__meta_kubernetes_namespace"], "namespace", "(.*)", ";"),
        (["namespace", "app"], "job", "(.*)", "/"),
        ([f"{meta}name"], "pod", "(.*)", ";"),
        ([f"{meta}container_name"], "container", "(.*)", ";"),
    ]
    relabel = "".join(
        f"  rule {{\n    source_labels = {json.dumps(sources)}\n    separator = \"{separator}\"\n"
        f"    regex = \"{regex}\"\n    target_label = \"{target}\"\n  }}\n"
        for sources, target, regex, separator in rules
    )
    return (
        'discovery.kubernetes "pods" {\n  role = "pod"\n  selectors {\n    role = "pod"\n'
        '    field = "spec.nodeName=" + sys.env("HOSTNAME")\n  }\n}\n\n'
        f'discovery.relabel "pods" {{\n  targets = discovery.kubernetes.pods.targets\n{relabel}}}\n\n'
        'loki.source.kubernetes "pods" {\n  targets = discovery.relabel.pods.output\n'
        '  forward_to = [loki.write.burrow.receiver]\n}\n\n'
        f'loki.write "burrow" {{\n  endpoint {{\n    url = "{loki_url(config)}/loki/api/v1/push"\n'
        f'    tenant_id = "{LOKI_TENANT}"\n  }}\n}}\n'
    )


def alloy(config: MonitoringConfig, digests: Mapping[str, str] | None = None) -> HelmAddOn:
    """Grafana Alloy as a DaemonSet shipping the pods' logs to Loki: non-root, read-only, no host
    paths, reading only pods and their logs, nothing reported to Grafana Labs; its PodLogs CRD
    (unused) is not installed."""
    return HelmAddOn(
        name="alloy",
        repository=ALLOY.repository,
        chart="alloy",
        version=ALLOY.version,
        namespace=config.namespace,
        values={
            "crds": {"create": False},
            # Only what the pipeline reads (discovering pods, reading their logs): the chart's default
            # ClusterRole would also read every Secret and ConfigMap of the cluster. (The chart renders
            # both lists into one ClusterRole and fails on an empty one.)
            "rbac": {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
                     "clusterRules": [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}]},
            "global": {"podSecurityContext": {"runAsNonRoot": True, "runAsUser": ALLOY_USER, "runAsGroup": ALLOY_USER,
                                              "fsGroup": ALLOY_USER, "seccompProfile": {"type": "RuntimeDefault"}}},
            "alloy": {
                "configMap": {"content": alloy_config(config)},
                "storagePath": ALLOY_STORAGE,
                "enableReporting": False,
                "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}},
                "mounts": {"extra": [{"name": "storage", "mountPath": ALLOY_STORAGE}]},
            },
            "controller": {"volumes": {"extra": [{"name": "storage", "emptyDir": {}}]}},
        },
        after=("loki",),
        digests=digests or {},
    )
