"""metrics-server: the resource metrics API that HorizontalPodAutoscalers read."""

from __future__ import annotations

from collections.abc import Mapping

from burrow.addons import kinds as k
from burrow.addons.base import HelmAddOn
from burrow.pins import METRICS_SERVER

KINDS = k.ChartKinds(
    chart="metrics-server",
    kinds=(k.DEPLOYMENT, k.PDB, *k.CLUSTER_RBAC, (k.RBAC, "RoleBinding"), *k.core("Service", "ServiceAccount"),
           ("apiregistration.k8s.io/v1", "APIService")),
)


def metrics_server(digests: Mapping[str, str] | None = None) -> HelmAddOn:
    return HelmAddOn(
        name="metrics-server",
        repository=METRICS_SERVER.repository,
        chart="metrics-server",
        version=METRICS_SERVER.version,
        namespace="kube-system",
        values={"replicas": 2, "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1}},
        digests=digests or {},
    )
