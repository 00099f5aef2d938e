"""External Secrets Operator: puts the credentials Burrow generated in AWS Secrets Manager into
Kubernetes Secrets, so their values never pass through Terraform.

Secrets by consumer: every namespace that reads generated secrets (the app, `monitoring`, `keda`)
has its own `ClusterSecretStore` (`store_for(namespace)`), which serves that namespace only and
authenticates explicitly (`auth.jwt`) as a ServiceAccount of its own in `external-secrets`, whose
IRSA role may read only that consumer's secrets (`burrow.cluster.credentials`). The operator has no
AWS role of its own, the chart's aggregation into `edit`/`view` is off, and a
ValidatingAdmissionPolicy refuses any store for AWS without `auth`, which would otherwise fall back
to whatever credentials the operator's pod finds. `external_secret` builds an `ExternalSecret` that
keeps a Kubernetes Secret in step with one generated secret, through its namespace's store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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


ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"


def store_for(namespace: str) -> str:
    """The ClusterSecretStore (and its ServiceAccount in `external-secrets`) of one consumer namespace."""
    return f"{STORE}-{namespace}"


def reader_subject(namespace: str) -> str:
    """The IRSA subject of `namespace`'s store: the only identity its reader role trusts."""
    return f"system:serviceaccount:{NAMESPACE}:{store_for(namespace)}"


def operator_values() -> dict[str, Any]:
    """No AWS role for the operator (every store names its own), and no aggregation of External
    Secrets' kinds into `edit`/`view`: only cluster administrators make stores. The keys are the
    same in chart 0.20.4 and the 1.x/2.x charts (`rbac.aggregateToEdit`, `rbac.aggregateToView`)."""
    return {
        "installCRDs": True,
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
        "rbac": {"aggregateToEdit": False, "aggregateToView": False},
        "resources": SMALL,
        "webhook": {"resources": SMALL},
        "certController": {"resources": SMALL},
    }


def reader_account(namespace: str, role_arn: str) -> K8sObject:
    """The ServiceAccount whose token `namespace`'s store exchanges for its reader role. It lives in
    `external-secrets`, where the consumer cannot mint tokens for it."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": store_for(namespace), "namespace": NAMESPACE, "labels": dict(MANAGED_BY),
                     "annotations": {ROLE_ANNOTATION: role_arn}},
        "automountServiceAccountToken": False,
    }


def cluster_secret_store(region: str, namespace: str) -> K8sObject:
    """`namespace`'s store: Secrets Manager of the cluster's own region (secrets of the whole
    environment are replicated there) as `namespace`'s reader role, for `namespace` only."""
    return {
        "apiVersion": API_VERSION,
        "kind": "ClusterSecretStore",
        "metadata": {"name": store_for(namespace), "labels": dict(MANAGED_BY)},
        "spec": {
            "provider": {"aws": {
                "service": "SecretsManager",
                "region": region,
                "auth": {"jwt": {"serviceAccountRef": {"name": store_for(namespace), "namespace": NAMESPACE}}},
            }},
            "conditions": [{"namespaces": [namespace]}],
        },
    }


#: The admission policy's name (and its binding's).
STORES_AUTHENTICATE = "burrow-secret-stores-authenticate"


def store_admission() -> list[K8sObject]:
    """A ValidatingAdmissionPolicy (Kubernetes >= 1.30) and its binding: a SecretStore or
    ClusterSecretStore for AWS must say how it authenticates. Without `auth`, External Secrets
    uses whatever AWS credentials its own pod finds (the node's role), for anyone who may create
    a store."""
    rule = {"apiGroups": ["external-secrets.io"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
            "resources": ["secretstores", "clustersecretstores"]}
    return [
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": STORES_AUTHENTICATE, "labels": dict(MANAGED_BY)},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {"resourceRules": [rule]},
                "validations": [{
                    "expression": "!has(object.spec.provider) || !has(object.spec.provider.aws)"
                                  " || has(object.spec.provider.aws.auth)",
                    "message": "a secret store for AWS must name its credentials in spec.provider.aws.auth "
                               "(Burrow's stores use auth.jwt.serviceAccountRef)",
                    "reason": "Forbidden",
                }],
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": STORES_AUTHENTICATE, "labels": dict(MANAGED_BY)},
            "spec": {"policyName": STORES_AUTHENTICATE, "validationActions": ["Deny"]},
        },
    ]


def store_objects(access: SecretsAccess) -> list[K8sObject]:
    """Per consumer its ServiceAccount and store, then the admission policy."""
    per_consumer = [
        obj
        for namespace, role_arn in access.readers.items()
        for obj in (reader_account(namespace, role_arn), cluster_secret_store(access.region, namespace))
    ]
    return [*per_consumer, *store_admission()]


def external_secret(name: str, namespace: str, key: str, template: Mapping[str, str],
                    secret_type: str = "Opaque") -> K8sObject:
    """An ExternalSecret that keeps Secret `name` (of `secret_type`) built from the JSON fields of
    Secrets Manager secret `key`; `template` maps each Secret key to a Go template over those fields."""
    return {
        "apiVersion": API_VERSION,
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)},
        "spec": {
            "refreshInterval": REFRESH,
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": store_for(namespace)},
            "target": {
                "name": name,
                "creationPolicy": "Owner",
                "template": {"type": secret_type, "data": dict(template)},
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
    """The operator's chart, then (it brings the CRDs) one ClusterSecretStore per consumer of
    `access` and the admission policy for stores."""

    access: SecretsAccess
    name: str = "external-secrets"
    #: Digests of the chart's images by name (`HelmAddOn.digests`). default: none (the chart's tags)
    digests: Mapping[str, str] = field(default_factory=dict)

    def deploy(self, scope: Construct, cluster: ClusterInfo) -> Construct:
        holder = Construct(scope, self.name)
        chart = HelmAddOn(
            name=self.name,
            repository=EXTERNAL_SECRETS.repository,
            chart="external-secrets",
            version=CHART_VERSION,
            namespace=NAMESPACE,
            values=operator_values(),
            digests=self.digests,
        )
        release = chart.release(holder, ClusterInfo.providers_of(scope).helm)
        KubernetesObjects(
            holder,
            "store",
            {"release_name": "burrow-secret-store", "namespace": NAMESPACE, "objects": store_objects(self.access)},
            depends_on=[*filter(None, [owned_namespace(scope, NAMESPACE)]), release],
        )
        return holder


def store_ready(scope: Construct) -> list:
    """What a Secret built by an ExternalSecret in `scope`'s stack waits for: the store's release."""
    holder = TerraformStack.of(scope).node.try_find_child("external-secrets")
    store = holder.node.try_find_child("store") if holder is not None else None
    return [store.release] if isinstance(store, KubernetesObjects) else []
