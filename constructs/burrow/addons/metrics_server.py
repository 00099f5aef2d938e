"""metrics-server: the resource metrics API that HorizontalPodAutoscalers read."""

from __future__ import annotations

from burrow.addons import kinds as k
from burrow.addons.base import HelmAddOn

KINDS = k.ChartKinds(
    chart="metrics-server",
    kinds=(k.DEPLOYMENT, k.PDB, *k.CLUSTER_RBAC, (k.RBAC, "RoleBinding"), *k.core("Service", "ServiceAccount"),
           ("apiregistration.k8s.io/v1", "APIService")),
)


def metrics_server() -> HelmAddOn:
    return HelmAddOn(
        name="metrics-server",
        repository="https://kubernetes-sigs.github.io/metrics-server/",
        chart="metrics-server",
        version="3.12.2",
        namespace="kube-system",
        values={"replicas": 2, "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1}},
    )
