"""The small interfaces the cluster layer plugs into (EKS Blueprints' shape).

A cluster provider (`EksCluster` makes one; `existing_cluster` in environment.py finds one
through a `KubeconfigCluster`) hands back a `ClusterInfo`. Anything that talks to the cluster (add-ons,
the app layer) asks that `ClusterInfo` to configure the kubernetes and helm
providers in *its own* stack, so the cluster always exists before a stack that
talks to it is planned, and cdktf turns the cloud values into cross-stack
references.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cdktf import Fn, TerraformStack
from cdktf_cdktf_provider_helm.provider import HelmProvider, HelmProviderKubernetes, HelmProviderKubernetesExec
from cdktf_cdktf_provider_kubernetes.provider import KubernetesProvider, KubernetesProviderExec

from burrow.release_names import check_release_names_at_synth
from constructs import Construct

EXEC_API_VERSION = "client.authentication.k8s.io/v1beta1"


@dataclass(frozen=True)
class KubernetesProviders:
    """The providers one stack uses to talk to a cluster."""

    kubernetes: KubernetesProvider
    helm: HelmProvider


@dataclass(frozen=True)
class SecretsAccess:
    """Where the cluster's External Secrets Operator reads the credentials Burrow generated.

    `readers` maps each consumer namespace to the IRSA role External Secrets assumes for it (it
    may read only that consumer's secrets); `prefix` is their common name prefix in AWS Secrets
    Manager.
    """

    readers: Mapping[str, str]
    region: str
    prefix: str

    def secret(self, key: str) -> str:
        """The Secrets Manager name of one generated secret, e.g. `burrow/qa/rabbitmq`."""
        return f"{self.prefix}/{key}"


@dataclass(frozen=True)
class NodeAutoscalingAccess:
    """What Karpenter's chart and node class need from the cloud side (`burrow.cluster.karpenter`).

    `controller_role_arn` is the IRSA role of Karpenter's service account; `node_role` the IAM role
    (by name) its nodes run with; `interruption_queue` the SQS queue (by name) EventBridge feeds
    with spot interruptions, rebalance recommendations, instance state and scheduled changes;
    `discovery` the value of the `karpenter.sh/discovery` tag on the subnets and security group
    its nodes use.
    """

    cluster_name: str
    controller_role_arn: str
    node_role: str
    interruption_queue: str
    discovery: str


@dataclass(frozen=True)
class BackupAccess:
    """Where Velero keeps backups (`burrow.cluster.backups`): the bucket, its region, and the IRSA
    role of Velero's service account (that bucket and the environment's EBS snapshots only)."""

    bucket: str
    region: str
    role_arn: str


@dataclass(frozen=True)
class EdgeAccess:
    """The public way in of one region (`burrow.cluster.edge`): the IRSA roles of the AWS Load
    Balancer Controller and of external-dns, the Route 53 zone external-dns may write, the VPC the
    load balancers go into, and the names the producer answers to (`host`, and `region_host` that
    only this region answers)."""

    cluster_name: str
    region: str
    vpc_id: str
    load_balancer_role_arn: str
    dns_role_arn: str
    zone_id: str
    zone_name: str
    host: str
    region_host: str
    #: The region's validated ACM certificate for `host` and `region_host` (None without TLS).
    certificate_arn: str | None = None


@dataclass(frozen=True)
class FederationAccess:
    """How this region's broker reaches the other regions' (`burrow.app.federation`): each upstream
    region's broker name (a record in the environment's zone, resolving to that region's internal
    load balancer over the peered networks), and the networks allowed to reach this region's."""

    upstreams: tuple[tuple[str, str], ...]  # (region, broker host)
    broker_host: str
    peer_cidrs: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class CloudAccess:
    """What a cluster's add-ons reach in the cloud, keyword-only and absent by default; every
    `ClusterInfo` carries these fields."""

    #: Credentials held outside Terraform state (cloud environments); None: Terraform generates them.
    secrets: SecretsAccess | None = None
    #: Karpenter's cloud side when the cluster autoscales its nodes with it; None: nodes are fixed.
    node_autoscaling: NodeAutoscalingAccess | None = None
    #: Velero's cloud side when the environment is backed up; None: no backups.
    backups: BackupAccess | None = None
    #: The public way in (load balancer controller, external-dns); None: the producer stays internal.
    edge: EdgeAccess | None = None


class ClusterInfo(CloudAccess, ABC):
    """What a stack needs to talk to a cluster. Returned by every cluster provider."""

    #: Kubernetes minor version of the cluster, e.g. "1.33".
    version: str
    #: True when the cluster runs in more than one availability zone (zone spreading makes sense).
    multi_zone: bool

    @abstractmethod
    def connection(self) -> dict[str, Any]:
        """Provider connection settings (`host`, `config_path`, …) shared by kubernetes and helm.

        An `exec_args` entry means: authenticate with `aws <exec_args>` (a short-lived token).
        """

    def connection_in(self, stack: TerraformStack) -> dict[str, Any]:
        """`connection()` for providers in `stack`; a cluster whose settings need something of
        their own in that stack (a remote state to read them from) creates it here."""
        return self.connection()

    def configure_providers(self, stack: TerraformStack) -> KubernetesProviders:
        """Create the kubernetes and helm providers in `stack`, authenticated to this cluster; the
        stack's synth then refuses two releases with one name in one namespace."""
        check_release_names_at_synth(stack)
        settings = self.connection_in(stack)
        exec_args = settings.pop("exec_args", None)
        k8s_exec = helm_exec = None
        if exec_args:
            k8s_exec = [KubernetesProviderExec(api_version=EXEC_API_VERSION, command="aws", args=exec_args)]
            helm_exec = HelmProviderKubernetesExec(api_version=EXEC_API_VERSION, command="aws", args=exec_args)
        providers = KubernetesProviders(
            kubernetes=KubernetesProvider(stack, "kubernetes", exec=k8s_exec, **settings),
            helm=HelmProvider(stack, "helm", kubernetes=HelmProviderKubernetes(exec=helm_exec, **settings)),
        )
        stack._burrow_providers = providers  # noqa: SLF001 - one well-known attribute per stack
        return providers

    @staticmethod
    def providers_of(scope: Construct) -> KubernetesProviders:
        """The providers a stack configured earlier with `configure_providers`."""
        stack = TerraformStack.of(scope)
        found = getattr(stack, "_burrow_providers", None)
        if found is None:
            raise LookupError(
                f"{stack.node.path}: no Kubernetes providers; call cluster.configure_providers(stack) first"
            )
        return found


@dataclass(frozen=True)
class KubeconfigCluster(ClusterInfo):
    """A cluster reached through a kubeconfig context (kind, minikube, any existing cluster)."""

    kubeconfig_path: str
    context: str
    version: str
    multi_zone: bool = False

    def connection(self) -> dict[str, Any]:
        return {"config_path": self.kubeconfig_path, "config_context": self.context}


def get_token_args(cluster_name: str, region: str, role_arn: str | None = None) -> list[str]:
    """`aws eks get-token` for `cluster_name`, as the role the stacks' AWS providers assume when there
    is one: the cluster's access entries know that role (it created the cluster), not necessarily
    the caller's own identity."""
    return [
        "eks",
        "get-token",
        "--cluster-name",
        cluster_name,
        "--region",
        region,
        *(["--role-arn", role_arn] if role_arn else []),
    ]


@dataclass(frozen=True)
class TokenCluster(ClusterInfo):
    """A cluster reached by endpoint, CA and a short-lived token from `aws eks get-token`.

    `endpoint`, `certificate_authority` and `name` are usually tokens from another
    stack; cdktf wires them as cross-stack references. No kubeconfig file is needed.
    """

    name: str
    endpoint: str
    certificate_authority: str
    region: str
    version: str
    multi_zone: bool = True
    #: The role tokens are requested as (`aws.role_arn`); default: the caller's own credentials.
    role_arn: str | None = None

    def connection(self) -> dict[str, Any]:
        return {
            "host": self.endpoint,
            "cluster_ca_certificate": Fn.base64decode(self.certificate_authority),
            "exec_args": get_token_args(self.name, self.region, self.role_arn),
        }
