"""KEDA: scales the consumer on RabbitMQ queue depth (installs the ScaledObject CRDs).

Its operator reads Secrets in its own namespace only (`permissions.*.restrict.secret`): no
ClusterRole lists or watches every Secret of the cluster. A scaler's credentials therefore live in
KEDA's namespace, one Secret per app namespace, referenced by a `ClusterTriggerAuthentication`
(`scaler_auth`): built by External Secrets from the broker's secret in AWS Secrets Manager
(`scaler_credentials`, in the add-ons stack) or, where Terraform generates the broker's
credentials, written by the app stack.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from burrow.addons import kinds as k
from burrow.addons.base import HelmAddOn, owned_namespace
from burrow.addons.external_secrets import external_secret, store_ready
from burrow.k8s.objects import MANAGED_BY, K8sObject
from burrow.k8s.release import KubernetesObjects
from burrow.pins import KEDA
from burrow.spi import ClusterInfo
from constructs import Construct

NAMESPACE = "keda"
KINDS = k.ChartKinds(
    chart="keda",
    kinds=(k.DEPLOYMENT, *k.CLUSTER_RBAC, *k.NAMESPACE_RBAC, *k.core("Service", "ServiceAccount"),
           ("apiregistration.k8s.io/v1", "APIService"), ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration")),
    crds=(*k.group_kinds("keda.sh", "ScaledObject", "ScaledJob", "TriggerAuthentication", "ClusterTriggerAuthentication"),
          *k.group_kinds("eventing.keda.sh", "CloudEventSource", "ClusterCloudEventSource")),
)
#: The key of a scaler Secret: the AMQP URI with credentials (the RabbitMQ scaler's `host` parameter).
SCALER_KEY = "host"


def scaler_auth_name(app_namespace: str) -> str:
    """The ClusterTriggerAuthentication (and its Secret in KEDA's namespace) of an app namespace's broker."""
    return f"{app_namespace}-rabbitmq"


def scaler_auth(app_namespace: str) -> K8sObject:
    """The ClusterTriggerAuthentication a ScaledObject of `app_namespace` names; KEDA reads its
    Secret in its own namespace."""
    name = scaler_auth_name(app_namespace)
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ClusterTriggerAuthentication",
        "metadata": {"name": name, "labels": dict(MANAGED_BY)},
        "spec": {"secretTargetRef": [{"parameter": "host", "name": name, "key": SCALER_KEY}]},
    }


def scaler_credentials(app_namespace: str, secret_key: str, uri_template: str) -> list[K8sObject]:
    """The ExternalSecret building the scaler Secret of `app_namespace` in KEDA's namespace from
    Secrets Manager secret `secret_key` (`uri_template`: the AMQP URI over its fields), and its
    ClusterTriggerAuthentication."""
    return [
        external_secret(scaler_auth_name(app_namespace), NAMESPACE, secret_key, {SCALER_KEY: uri_template}),
        scaler_auth(app_namespace),
    ]


@dataclass(frozen=True)
class KedaAddOn(HelmAddOn):
    """KEDA's chart (pinned) with Secret reads restricted to its namespace, then `objects` (scaler
    credentials and their ClusterTriggerAuthentications) once its CRDs and the secret store exist."""

    name: str = "keda"
    repository: str = KEDA.repository
    chart: str = "keda"
    version: str = KEDA.version
    namespace: str = NAMESPACE
    values: Mapping[str, Any] = field(
        default_factory=lambda: {
            "permissions": {part: {"restrict": {"secret": True}} for part in ("operator", "metricServer")}
        }
    )
    objects: tuple[K8sObject, ...] = ()

    def deploy(self, scope: Construct, cluster: ClusterInfo) -> Construct:
        holder = Construct(scope, self.name)
        release = self.release(holder, ClusterInfo.providers_of(scope).helm)
        if self.objects:
            KubernetesObjects(
                holder,
                "scaler-auth",
                {"release_name": "keda-scaler-auth", "namespace": self.namespace, "objects": list(self.objects)},
                depends_on=[*filter(None, [owned_namespace(scope, self.namespace)]), release, *store_ready(scope)],
            )
        return holder


def keda(objects: tuple[K8sObject, ...] = (), digests: Mapping[str, str] | None = None) -> KedaAddOn:
    return KedaAddOn(objects=objects, digests=digests or {})
