"""Flux, for environments whose app layer is delivered by GitOps (`delivery: gitops`).

Terraform keeps owning the cloud, the cluster and the add-ons, Flux among them (pinned chart, its
CRDs included); Flux owns what runs in the app namespace, reconciling it from the tree
`make gitops-export` writes into the configured repository, branch and path. One
`GitRepository` and one `Kustomization` (prune on, health checks waited for) connect the two.

Flux runs as a tenant of the app namespace, never as cluster-admin: multitenancy is on and
unprivileged (its controllers may only impersonate service accounts, and no object may reference
another namespace's), the `GitRepository`, the `Kustomization` and its service account live in
the app namespace, which Terraform creates (with its Pod Security labels), and that account's
Role covers exactly the kinds the tree and the broker's chart hold, in that namespace only
(`targetNamespace`). The `GitRepository` applies only commits signed by one of the configured
OpenPGP keys (`gitops.signing_keys`, in a Secret Terraform writes next to it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from cdktf import TerraformStack
from cdktf_cdktf_provider_helm.release import Release
from cdktf_cdktf_provider_kubernetes.namespace_v1 import NamespaceV1, NamespaceV1Metadata
from cdktf_cdktf_provider_kubernetes.secret_v1 import SecretV1, SecretV1Metadata

from burrow.addons import kinds as k
from burrow.addons.base import ClusterAddOn, HelmAddOn, owned_namespace
from burrow.addons.settings import GitOpsConfig
from burrow.k8s.objects import MANAGED_BY, K8sObject, metadata
from burrow.k8s.pod_security import admission_labels
from burrow.k8s.release import KubernetesObjects
from burrow.pins import FLUX
from burrow.spi import ClusterInfo
from constructs import Construct

CHART_VERSION = FLUX.version
NAMESPACE = "flux-system"
SOURCE = "burrow"
KINDS = k.ChartKinds(
    chart="flux2",
    kinds=(k.DEPLOYMENT, ("batch/v1", "Job"), *k.CLUSTER_RBAC, *k.core("Service", "ServiceAccount"),
           ("networking.k8s.io/v1", "NetworkPolicy")),
    crds=(*k.group_kinds("source.toolkit.fluxcd.io", "Bucket", "ExternalArtifact", "GitRepository", "HelmChart",
                       "HelmRepository", "OCIRepository"),
          ("kustomize.toolkit.fluxcd.io", "Kustomization"), ("helm.toolkit.fluxcd.io", "HelmRelease"),
          *k.group_kinds("notification.toolkit.fluxcd.io", "Alert", "Provider", "Receiver")),
)
SMALL = {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}}
#: The app namespace's service account Flux applies the tree as (and the Role bound to it).
TENANT = "flux-deployer"
#: The Secret with the public keys a commit's signature must verify against.
SIGNING_KEYS = "flux-signing-keys"
WRITE = ["get", "list", "watch", "create", "update", "patch", "delete"]
#: What the tenant may manage in the app namespace: the kinds of the tree and of the broker's chart
#: (with Helm's release records, which are Secrets).
TENANT_KINDS = {
    "": ["configmaps", "secrets", "services", "serviceaccounts", "persistentvolumeclaims", "resourcequotas",
         "limitranges"],
    "apps": ["deployments", "statefulsets"],
    "policy": ["poddisruptionbudgets"],
    "networking.k8s.io": ["networkpolicies", "ingresses"],
    "autoscaling": ["horizontalpodautoscalers"],
    "rbac.authorization.k8s.io": ["roles", "rolebindings"],
    "keda.sh": ["scaledobjects"],
    "external-secrets.io": ["externalsecrets"],
    "monitoring.coreos.com": ["servicemonitors", "prometheusrules", "alertmanagerconfigs"],
    "helm.toolkit.fluxcd.io": ["helmreleases"],
    "source.toolkit.fluxcd.io": ["helmrepositories", "ocirepositories"],
}
#: Read-only: what Helm's wait reads, and what the broker chart's own Role grants (Kubernetes lets
#: an account grant only what it holds).
TENANT_EXTRA_RULES = [
    {"apiGroups": [""], "resources": ["pods", "endpoints"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
]


def repository_path(config: GitOpsConfig, env_name: str) -> str:
    return config.path or f"clusters/{env_name}"


def flux_values() -> dict:
    # Image automation rewrites Git; Burrow's images are pinned by release instead, so it stays off.
    return {
        # Unprivileged multitenancy: no cluster-admin binding; the controllers impersonate each
        # object's service account (the namespace's `default`, which may do nothing, when unnamed)
        # and refuse references across namespaces.
        "multitenancy": {"enabled": True, "privileged": False, "defaultServiceAccount": "default"},
        "imageAutomationController": {"create": False},
        "imageReflectionController": {"create": False},
        **{controller: {"resources": SMALL} for controller in
           ("helmController", "kustomizeController", "notificationController", "sourceController")},
    }


def tenant_objects(namespace: str) -> list[K8sObject]:
    """The service account Flux applies the tree as, and its Role in `namespace` only."""
    rbac = "rbac.authorization.k8s.io"
    rules = [{"apiGroups": [group], "resources": resources, "verbs": WRITE} for group, resources in TENANT_KINDS.items()]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(TENANT, namespace, MANAGED_BY)},
        {"apiVersion": f"{rbac}/v1", "kind": "Role", "metadata": metadata(TENANT, namespace, MANAGED_BY),
         "rules": [*rules, *TENANT_EXTRA_RULES]},
        {"apiVersion": f"{rbac}/v1", "kind": "RoleBinding", "metadata": metadata(TENANT, namespace, MANAGED_BY),
         "roleRef": {"apiGroup": rbac, "kind": "Role", "name": TENANT},
         "subjects": [{"kind": "ServiceAccount", "name": TENANT, "namespace": namespace}]},
    ]


def sync_objects(config: GitOpsConfig, env_name: str, namespace: str) -> list[K8sObject]:
    """The GitRepository (signed commits only) and the Kustomization applying it as the tenant."""
    source: dict = {"interval": config.interval, "url": config.repository, "ref": {"branch": config.branch},
                    "verify": {"mode": "HEAD", "secretRef": {"name": SIGNING_KEYS}}}
    if config.secret_name:
        source["secretRef"] = {"name": config.secret_name}
    return [
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": metadata(SOURCE, namespace, MANAGED_BY),
            "spec": source,
        },
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": metadata(f"burrow-{env_name}", namespace, MANAGED_BY),
            "spec": {
                "interval": config.interval,
                "path": f"./{repository_path(config, env_name)}",
                "prune": True,
                "wait": True,
                "timeout": "15m",
                "sourceRef": {"kind": "GitRepository", "name": SOURCE},
                "serviceAccountName": TENANT,
                "targetNamespace": namespace,
            },
        },
    ]


@dataclass(frozen=True)
class FluxAddOn(ClusterAddOn):
    """Flux's chart (pinned), then the GitRepository and Kustomization of the environment."""

    config: GitOpsConfig
    env_name: str
    #: The app namespace: created here (the tenant may not create namespaces), and all Flux may touch.
    namespace: str
    name: str = "flux"
    #: Digests of the chart's images by name (`HelmAddOn.digests`). default: none (the chart's tags)
    digests: Mapping[str, str] = field(default_factory=dict)

    def deploy(self, scope: Construct, cluster: ClusterInfo) -> Construct:
        # What Flux syncs uses the CRDs and operators of every add-on installed before it.
        earlier = [node for node in TerraformStack.of(scope).node.find_all() if isinstance(node, Release)]
        holder = Construct(scope, self.name)
        chart = HelmAddOn(name=self.name, repository=FLUX.repository, chart="flux2",
                          version=CHART_VERSION, namespace=NAMESPACE, values=flux_values(), digests=self.digests)
        providers = ClusterInfo.providers_of(scope)
        release = chart.release(holder, providers.helm)
        app = NamespaceV1(holder, "app-namespace", provider=providers.kubernetes, metadata=NamespaceV1Metadata(
            name=self.namespace, labels={**MANAGED_BY, **admission_labels()}))
        # Public keys, not secrets; Flux reads them from a Secret beside the GitRepository.
        keys = SecretV1(holder, "signing-keys", provider=providers.kubernetes, type="Opaque",
                        metadata=SecretV1Metadata(name=SIGNING_KEYS, namespace=self.namespace, labels=dict(MANAGED_BY)),
                        data={f"signer-{index}.asc": key for index, key in enumerate(self.config.signing_keys)},
                        depends_on=[app])
        KubernetesObjects(
            holder,
            "sync",
            {
                "release_name": "burrow-gitops-sync",
                "namespace": self.namespace,
                "objects": [*tenant_objects(self.namespace), *sync_objects(self.config, self.env_name, self.namespace)],
            },
            depends_on=[*filter(None, [owned_namespace(scope, NAMESPACE)]), app, keys, release, *earlier],
        )
        return holder
