"""Flux, for environments whose app layer is delivered by GitOps (`delivery: gitops`).

Terraform keeps owning the cloud, the cluster and the add-ons, Flux among them (pinned chart, its
CRDs included); Flux owns what runs in the app namespace, reconciling it from the tree
`make gitops-export` writes into the configured repository, branch and path. One
`GitRepository` and one `Kustomization` (prune on, health checks waited for) connect the two.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import TerraformStack
from cdktf_cdktf_provider_helm.release import Release

from burrow.addons import kinds as k
from burrow.addons.base import ClusterAddOn, HelmAddOn, owned_namespace
from burrow.config.schema import GitOpsConfig
from burrow.k8s.objects import MANAGED_BY, K8sObject, metadata
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


def repository_path(config: GitOpsConfig, env_name: str) -> str:
    return config.path or f"clusters/{env_name}"


def flux_values() -> dict:
    # Image automation rewrites Git; Burrow's images are pinned by release instead, so it stays off.
    return {
        "imageAutomationController": {"create": False},
        "imageReflectionController": {"create": False},
        **{controller: {"resources": SMALL} for controller in
           ("helmController", "kustomizeController", "notificationController", "sourceController")},
    }


def sync_objects(config: GitOpsConfig, env_name: str) -> list[K8sObject]:
    source: dict = {"interval": config.interval, "url": config.repository, "ref": {"branch": config.branch}}
    if config.secret_name:
        source["secretRef"] = {"name": config.secret_name}
    return [
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": metadata(SOURCE, NAMESPACE, MANAGED_BY),
            "spec": source,
        },
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": metadata(f"burrow-{env_name}", NAMESPACE, MANAGED_BY),
            "spec": {
                "interval": config.interval,
                "path": f"./{repository_path(config, env_name)}",
                "prune": True,
                "wait": True,
                "timeout": "15m",
                "sourceRef": {"kind": "GitRepository", "name": SOURCE},
            },
        },
    ]


@dataclass(frozen=True)
class FluxAddOn(ClusterAddOn):
    """Flux's chart (pinned), then the GitRepository and Kustomization of the environment."""

    config: GitOpsConfig
    env_name: str
    name: str = "flux"

    def deploy(self, scope: Construct, cluster: ClusterInfo) -> Construct:
        # What Flux syncs uses the CRDs and operators of every add-on installed before it.
        earlier = [node for node in TerraformStack.of(scope).node.find_all() if isinstance(node, Release)]
        holder = Construct(scope, self.name)
        chart = HelmAddOn(name=self.name, repository=FLUX.repository, chart="flux2",
                          version=CHART_VERSION, namespace=NAMESPACE, values=flux_values())
        release = chart.release(holder, ClusterInfo.providers_of(scope).helm)
        KubernetesObjects(holder, "sync", release_name="burrow-gitops-sync", namespace=NAMESPACE,
                          objects=sync_objects(self.config, self.env_name),
                          depends_on=[*filter(None, [owned_namespace(scope, NAMESPACE)]), release, *earlier])
        return holder
