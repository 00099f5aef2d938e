"""KEDA: scales the consumer on RabbitMQ queue depth (installs the ScaledObject CRDs)."""

from __future__ import annotations

from burrow.addons import kinds as k
from burrow.addons.base import HelmAddOn
from burrow.pins import KEDA

KINDS = k.ChartKinds(
    chart="keda",
    kinds=(k.DEPLOYMENT, *k.CLUSTER_RBAC, *k.NAMESPACE_RBAC, *k.core("Service", "ServiceAccount"),
           ("apiregistration.k8s.io/v1", "APIService"), ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration")),
    crds=(*k.group_kinds("keda.sh", "ScaledObject", "ScaledJob", "TriggerAuthentication", "ClusterTriggerAuthentication"),
          *k.group_kinds("eventing.keda.sh", "CloudEventSource", "ClusterCloudEventSource")),
)


def keda() -> HelmAddOn:
    return HelmAddOn(
        name="keda",
        repository=KEDA.repository,
        chart="keda",
        version=KEDA.version,
        namespace="keda",
    )
