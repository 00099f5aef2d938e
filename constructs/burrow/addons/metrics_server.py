"""metrics-server: the resource metrics API that HorizontalPodAutoscalers read."""

from __future__ import annotations

from burrow.addons.base import CLUSTER_RBAC, DEPLOYMENT, PDB, RBAC, ChartKinds, HelmAddOn, core

KINDS = ChartKinds(
    chart="metrics-server",
    kinds=(DEPLOYMENT, PDB, *CLUSTER_RBAC, (RBAC, "RoleBinding"), *core("Service", "ServiceAccount"),
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
