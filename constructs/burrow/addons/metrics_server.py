"""metrics-server: the resource metrics API that HorizontalPodAutoscalers read."""

from __future__ import annotations

from burrow.addons.base import HelmAddOn


def metrics_server() -> HelmAddOn:
    return HelmAddOn(
        name="metrics-server",
        repository="https://kubernetes-sigs.github.io/metrics-server/",
        chart="metrics-server",
        version="3.12.2",
        namespace="kube-system",
        values={"replicas": 2, "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1}},
    )
