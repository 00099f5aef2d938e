"""KEDA: scales the consumer on RabbitMQ queue depth (installs the ScaledObject CRDs)."""

from __future__ import annotations

from burrow.addons.base import CLUSTER_RBAC, DEPLOYMENT, NAMESPACE_RBAC, ChartKinds, HelmAddOn, core, group_kinds

KINDS = ChartKinds(
    chart="keda",
    kinds=(DEPLOYMENT, *CLUSTER_RBAC, *NAMESPACE_RBAC, *core("Service", "ServiceAccount"),
           ("apiregistration.k8s.io/v1", "APIService"), ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration")),
    crds=(*group_kinds("keda.sh", "ScaledObject", "ScaledJob", "TriggerAuthentication", "ClusterTriggerAuthentication"),
          *group_kinds("eventing.keda.sh", "CloudEventSource", "ClusterCloudEventSource")),
)


def keda() -> HelmAddOn:
    return HelmAddOn(
        name="keda",
        repository="https://kedacore.github.io/charts",
        chart="keda",
        version="2.16.1",
        namespace="keda",
    )
