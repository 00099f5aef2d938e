"""External Secrets Operator: puts the credentials Burrow generated in AWS Secrets Manager into
Kubernetes Secrets, so their values never pass through Terraform.

The operator runs in `external-secrets` with an IRSA role that may read only the environment's
secrets (`burrow.cluster.credentials`). One `ClusterSecretStore` points at Secrets Manager in the
environment's region and serves only the namespaces named in `readers`; `external_secret` builds
an `ExternalSecret` that keeps a Kubernetes Secret in step with one generated secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cdktf import TerraformStack

from burrow.addons import kinds as k
from burrow.addons.base import ClusterAddOn, HelmAddOn, owned_namespace
from burrow.k8s.objects import MANAGED_BY, K8sObject
from burrow.k8s.release import KubernetesObjects
from burrow.pins import EXTERNAL_SECRETS
from burrow.spi import ClusterInfo, SecretsAccess
from constructs import Construct

NAMESPACE = "external-secrets"
SERVICE_ACCOUNT = "external-secrets"
#: The operator's identity as IRSA sees it (the reader role trusts exactly this subject).
SERVICE_ACCOUNT_SUBJECT = f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"
STORE = "burrow-secrets-manager"
API_VERSION = "external-secrets.io/v1"
CHART_VERSION = EXTERNAL_SECRETS.version
#: How often the operator re-reads Secrets Manager (a rotated value arrives within this).
REFRESH = "1h"

SMALL = {"requests": {"cpu": "20m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}}

KINDS = k.ChartKinds(
    chart="external-secrets",
    kinds=(k.DEPLOYMENT, *k.CLUSTER_RBAC, *k.NAMESPACE_RBAC, *k.core("Secret", "Service", "ServiceAccount"),
           ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration")),
    crds=(*k.group_kinds("external-secrets.io", "ExternalSecret", "ClusterExternalSecret", "SecretStore",
                       "ClusterSecretStore", "PushSecret", "ClusterPushSecret"),
          *k.group_kinds("generators.external-secrets.io", "ACRAccessToken", "BeyondtrustWorkloadCredentialsDynamicSecret",
                       "CloudsmithAccessToken", "ClusterGenerator", "ECRAuthorizationToken", "Fake", "GCRAccessToken",
                       "GeneratorState", "GithubAccessToken", "GitlabDeployToken",
                       "Grafana", "MFA", "Password", "QuayAccessToken", "SSHKey", "STSSessionToken", "UUID",
                       "VaultDynamicSecret", "Webhook")),
)


def operator_values(access: SecretsAccess) -> dict[str, Any]:
    return {
        "installCRDs": True,
        "serviceAccount": {
            "create": True,
            "name": SERVICE_ACCOUNT,
            "annotations": {"eks.amazonaws.com/role-arn": access.role_arn},
        },
        "resources": SMALL,
        "webhook": {"resources": SMALL},
        "certController": {"resources": SMALL},
    }


def cluster_secret_store(access: SecretsAccess, readers: tuple[str, ...]) -> K8sObject:
    """The store every ExternalSecret of Burrow uses: Secrets Manager of the cluster's own region
    (secrets of the whole environment are replicated there), for `readers` only."""
    return {
        "apiVersion": API_VERSION,
        "kind": "ClusterSecretStore",
        "metadata": {"name": STORE, "labels": dict(MANAGED_BY)},
        "spec": {
            "provider": {"aws": {"service": "SecretsManager", "region": access.region}},
            "conditions": [{"namespaces": list(readers)}],
        },
    }


def external_secret(name: str, namespace: str, key: str, template: Mapping[str, str]) -> K8sObject:
    """An ExternalSecret that keeps Secret `name` built from the JSON fields of Secrets Manager
    secret `key`; `template` maps each Secret key to a Go template over those fields."""
    return {
        "apiVersion": API_VERSION,
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)},
        "spec": {
            "refreshInterval": REFRESH,
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": STORE},
            "target": {
                "name": name,
                "creationPolicy": "Owner",
                "template": {"type": "Opaque", "data": dict(template)},
            },
            "dataFrom": [{"extract": {"key": key}}],
        },
    }


GENERATOR_API_VERSION = "generators.external-secrets.io/v1alpha1"


def password_generator(name: str, namespace: str, length: int = 32) -> K8sObject:
    """External Secrets' Password generator: letters and digits only (URI-safe)."""
    return {
        "apiVersion": GENERATOR_API_VERSION,
        "kind": "Password",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)},
        "spec": {"length": length, "digits": 8, "symbols": 0, "noUpper": False, "allowRepeat": True},
    }


def generated_secret(name: str, namespace: str, generator: str, fields: tuple[str, ...],
                     template: Mapping[str, str]) -> K8sObject:
    """An ExternalSecret that fills Secret `name` once from `generator`, one value per field (the
    generator's `password` renamed), and never again: `refreshInterval: 0`, so a broker's
    password does not change under it. The values exist only in the cluster."""
    return {
        "apiVersion": API_VERSION,
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)},
        "spec": {
            "refreshInterval": "0",
            "target": {"name": name, "creationPolicy": "Owner",
                       "template": {"type": "Opaque", "data": dict(template)}},
            "dataFrom": [
                {
                    "sourceRef": {"generatorRef": {"apiVersion": GENERATOR_API_VERSION, "kind": "Password", "name": generator}},
                    "rewrite": [{"regexp": {"source": "^password$", "target": field}}],
                }
                for field in fields
            ],
        },
    }


@dataclass(frozen=True)
class ExternalSecretsAddOn(ClusterAddOn):
    """The operator's chart and Burrow's ClusterSecretStore (after the chart, which brings the CRDs)."""

    access: SecretsAccess
    readers: tuple[str, ...]
    name: str = "external-secrets"

    def deploy(self, scope: Construct, cluster: ClusterInfo) -> Construct:
        holder = Construct(scope, self.name)
        chart = HelmAddOn(
            name=self.name,
            repository=EXTERNAL_SECRETS.repository,
            chart="external-secrets",
            version=CHART_VERSION,
            namespace=NAMESPACE,
            values=operator_values(self.access),
        )
        release = chart.release(holder, ClusterInfo.providers_of(scope).helm)
        KubernetesObjects(
            holder,
            "store",
            release_name="burrow-secret-store",
            namespace=NAMESPACE,
            objects=[cluster_secret_store(self.access, self.readers)],
            depends_on=[*filter(None, [owned_namespace(scope, NAMESPACE)]), release],
        )
        return holder


def store_ready(scope: Construct) -> list:
    """What a Secret built by an ExternalSecret in `scope`'s stack waits for: the store's release."""
    holder = TerraformStack.of(scope).node.try_find_child("external-secrets")
    store = holder.node.try_find_child("store") if holder is not None else None
    return [store.release] if isinstance(store, KubernetesObjects) else []
