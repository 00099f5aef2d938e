"""ServiceMonitors, the Grafana dashboard ConfigMap and the AlertmanagerConfig, as Kubernetes objects."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from burrow.k8s.objects import K8sObject, metadata, selector_for
from burrow.monitoring.settings import AlertReceiver

DASHBOARD_LABEL = {"grafana_dashboard": "1"}  # picked up by kube-prometheus-stack's Grafana sidecar


def service_monitor(name: str, namespace: str, labels: Mapping[str, str], port: str = "http") -> K8sObject:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(name, namespace, labels),
        "spec": {
            "selector": {"matchLabels": selector_for(labels)},
            "endpoints": [{"port": port, "path": "/metrics", "interval": "30s"}],
        },
    }


def dashboard_config_map(name: str, namespace: str, labels: Mapping[str, str], dashboard: dict[str, Any]) -> K8sObject:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(name, namespace, {**labels, **DASHBOARD_LABEL}),
        "data": {f"{name}.json": json.dumps(dashboard, indent=2, sort_keys=True)},
    }


def alertmanager_config(namespace: str, labels: Mapping[str, str], receiver: AlertReceiver) -> K8sObject:
    """Route this namespace's alerts to the team's webhook; the URL stays in the team's Secret."""
    return {
        "apiVersion": "monitoring.coreos.com/v1alpha1",
        "kind": "AlertmanagerConfig",
        "metadata": metadata(f"{receiver.name}-routing", namespace, labels),
        "spec": {
            "route": {
                "receiver": receiver.name,
                "groupBy": ["alertname", "severity"],
                "groupWait": "30s",
                "groupInterval": "5m",
                "repeatInterval": "4h",
            },
            "receivers": [
                {
                    "name": receiver.name,
                    "webhookConfigs": [
                        {
                            "urlSecret": receiver.webhook_url_secret.model_dump(),
                            "sendResolved": receiver.send_resolved,
                        }
                    ],
                }
            ],
        },
    }


def expressions(objects: Sequence[K8sObject]) -> list[str]:
    """Every PromQL expression in alert rules and dashboards among `objects` (for checks)."""
    found = []
    for obj in objects:
        if obj["kind"] == "PrometheusRule":
            found += [rule["expr"] for group in obj["spec"]["groups"] for rule in group["rules"]]
        elif obj["kind"] == "ConfigMap" and obj["metadata"]["labels"].get("grafana_dashboard") == "1":
            for text in obj["data"].values():
                found += [t["expr"] for panel in json.loads(text)["panels"] for t in panel.get("targets", [])]
    return found


#: kube-prometheus-stack's Grafana service account (release `kube-prometheus-stack`).
GRAFANA_SERVICE_ACCOUNT = "kube-prometheus-stack-grafana"


def dashboard_reader(namespace: str, labels: Mapping[str, str], monitoring_namespace: str) -> list[K8sObject]:
    """A Role and RoleBinding letting Grafana's dashboard sidecar read ConfigMaps (never Secrets) of
    `namespace`: its chart grants it nothing outside the monitoring namespace."""
    name = "grafana-dashboard-reader"
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": metadata(name, namespace, labels),
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": metadata(name, namespace, labels),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": GRAFANA_SERVICE_ACCOUNT, "namespace": monitoring_namespace}]},
    ]
