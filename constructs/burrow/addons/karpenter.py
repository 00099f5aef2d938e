"""Karpenter: nodes that follow the work. When KEDA or the HPA add pods the core node group cannot
hold, Karpenter launches an instance that fits them within the NodePool's limits, and removes or
replaces nodes that are empty or underused (consolidation), expired, or about to be interrupted.

Two releases of the same pinned version: `karpenter-crd` owns the CRDs (so a chart upgrade
upgrades them too, which a chart's `crds/` folder never does), then `karpenter` itself in
`kube-system` (its default affinity keeps it off the nodes it manages). Then one `EC2NodeClass`
(AMI, subnets and security group by discovery tag, encrypted gp3 root volume, IMDSv2 only) and one
`NodePool` from the environment's configuration. Burrow's workloads select that pool
(`workload_node_selector`); RabbitMQ also asks for on-demand capacity when the pool offers it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from burrow.addons import kinds as k
from burrow.addons.base import ClusterAddOn, HelmAddOn
from burrow.addons.monitoring import MONITORING
from burrow.addons.settings import KarpenterConfig
from burrow.k8s.objects import MANAGED_BY, K8sObject
from burrow.k8s.release import DeliversObjects, KubernetesObjects
from burrow.pins import KARPENTER
from burrow.policy.facts import PolicyFacts
from burrow.policy.guardrails import Guardrails
from burrow.spi import ClusterInfo, NodeAutoscalingAccess
from constructs import Construct

CHART_REPOSITORY = KARPENTER.repository
CHART_VERSION = KARPENTER.version
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "karpenter"
NODE_POOL = "burrow"
NODE_CLASS = "burrow"
POOL_LABEL = "karpenter.sh/nodepool"
CAPACITY_LABEL = "karpenter.sh/capacity-type"
#: 1.14 adds the CapacityBuffer CRD of SIG Autoscaling's API (autoscaling.x-k8s.io); Burrow creates none.
CRDS = (*k.group_kinds("karpenter.sh", "NodePool", "NodeClaim", "NodeOverlay"), ("karpenter.k8s.aws", "EC2NodeClass"),
        ("autoscaling.x-k8s.io", "CapacityBuffer"))
CRD_KINDS = k.ChartKinds(chart="karpenter-crd", kinds=(), crds=CRDS)
#: The controller's chart ships the same CRDs in `crds/`; Burrow skips them (`skip_crds`).
KINDS = k.ChartKinds(
    chart="karpenter",
    kinds=(k.DEPLOYMENT, k.PDB, *k.CLUSTER_RBAC, *k.NAMESPACE_RBAC, *k.core("Service", "ServiceAccount")),
    when={"serviceMonitor.enabled": (k.SERVICE_MONITOR,)},
    crds=CRDS,
)


def workload_node_selector(karpenter: KarpenterConfig | None, broker: bool = False) -> dict[str, str]:
    """Where Burrow's pods run: Karpenter's pool when the cluster has one (`karpenter`; brokers on
    on-demand capacity when the pool allows it: a spot interruption would take a quorum member), else
    anywhere."""
    if karpenter is None:
        return {}
    selector = {POOL_LABEL: NODE_POOL}
    if broker and "on-demand" in karpenter.capacity_types:
        selector[CAPACITY_LABEL] = "on-demand"
    return selector


def controller_values(access: NodeAutoscalingAccess, monitoring: bool) -> dict[str, Any]:
    return {
        "settings": {"clusterName": access.cluster_name, "interruptionQueue": access.interruption_queue},
        "serviceAccount": {
            "name": SERVICE_ACCOUNT,
            "annotations": {"eks.amazonaws.com/role-arn": access.controller_role_arn},
        },
        "replicas": 2,
        "controller": {"resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}},
        "serviceMonitor": {"enabled": monitoring},
    }


def node_class(access: NodeAutoscalingAccess, config: KarpenterConfig, env_name: str) -> K8sObject:
    discovery = [{"tags": {"karpenter.sh/discovery": access.discovery}}]
    return {
        "apiVersion": "karpenter.k8s.aws/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": NODE_CLASS, "labels": dict(MANAGED_BY)},
        "spec": {
            "role": access.node_role,
            "amiSelectorTerms": [{"alias": config.ami_alias}],
            "subnetSelectorTerms": discovery,
            "securityGroupSelectorTerms": discovery,
            "metadataOptions": {"httpEndpoint": "enabled", "httpProtocolIPv6": "disabled",
                                "httpPutResponseHopLimit": 1, "httpTokens": "required"},
            "blockDeviceMappings": [{
                "deviceName": "/dev/xvda",
                "ebs": {"volumeSize": f"{config.volume_size_gib}Gi", "volumeType": "gp3", "encrypted": True,
                        "deleteOnTermination": True},
            }],
            "tags": {"Project": "burrow", "Environment": env_name, "ManagedBy": "burrow"},
        },
    }


def node_pool(config: KarpenterConfig) -> K8sObject:
    requirements = [
        {"key": CAPACITY_LABEL, "operator": "In", "values": list(config.capacity_types)},
        {"key": "karpenter.k8s.aws/instance-category", "operator": "In", "values": list(config.instance_categories)},
        {"key": "karpenter.k8s.aws/instance-size", "operator": "In", "values": list(config.instance_sizes)},
        {"key": "karpenter.k8s.aws/instance-generation", "operator": "Gt", "values": [str(config.min_generation - 1)]},
        {"key": "kubernetes.io/arch", "operator": "In", "values": list(config.architectures)},
        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
    ]
    disruption: dict[str, Any] = {
        "consolidationPolicy": config.consolidation_policy,
        "consolidateAfter": config.consolidate_after,
    }
    if config.disruption_budget is not None:
        disruption["budgets"] = [{"nodes": config.disruption_budget}]
    spec: dict[str, Any] = {
        "template": {
            "metadata": {"labels": dict(MANAGED_BY)},
            "spec": {
                "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": NODE_CLASS},
                "requirements": requirements,
                "expireAfter": config.expire_after,
            },
        },
        "disruption": disruption,
    }
    if config.limits is not None:
        spec["limits"] = {"cpu": str(config.limits.cpu), "memory": f"{config.limits.memory_gib}Gi"}
    return {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": NODE_POOL, "labels": dict(MANAGED_BY)},
            "spec": spec}


class KarpenterNodePool(DeliversObjects, Construct):
    """The EC2NodeClass and NodePool, delivered as one object release after Karpenter's CRDs.

    Policed as a `nodepool` (production: limits, a disruption budget, on-demand only).
    Escape hatches: `objects` (native shape, edits before synth are delivered and checked), `delivery`.
    """

    def __init__(self, scope: Construct, id: str, *, objects: list[K8sObject], depends_on: list) -> None:
        super().__init__(scope, id)
        Guardrails.of(self)
        self.delivery = KubernetesObjects(
            self,
            "objects",
            {"release_name": "burrow-node-pool", "namespace": NAMESPACE, "objects": objects},
            depends_on=depends_on,
        )

    def policy_facts(self) -> PolicyFacts:
        return PolicyFacts("nodepool", tuple(obj for obj in self.objects if obj.get("kind") == "NodePool"))


@dataclass(frozen=True)
class KarpenterAddOn(ClusterAddOn):
    """Karpenter's CRD chart and chart (pinned), then Burrow's EC2NodeClass and NodePool."""

    access: NodeAutoscalingAccess
    config: KarpenterConfig
    env_name: str
    monitoring: bool = False
    name: str = "karpenter"
    #: Digests of the chart's images by name (`HelmAddOn.digests`). default: none (the chart's tags)
    digests: Mapping[str, str] = field(default_factory=dict)

    def deploy(self, scope: Construct, cluster: ClusterInfo) -> Construct:
        holder = Construct(scope, self.name)
        helm = ClusterInfo.providers_of(scope).helm
        crds = HelmAddOn(name="karpenter-crd", repository=CHART_REPOSITORY, chart="karpenter-crd",
                         version=CHART_VERSION, namespace=NAMESPACE)
        crd_release = crds.release(Construct(holder, "crds"), helm)
        controller = HelmAddOn(
            name="karpenter", repository=CHART_REPOSITORY, chart="karpenter", version=CHART_VERSION,
            namespace=NAMESPACE, values=controller_values(self.access, self.monitoring), skip_crds=True,
            after=(MONITORING,) if self.monitoring else (), digests=self.digests,
        )
        release = controller.release(holder, helm, depends_on=[crd_release])
        KarpenterNodePool(holder, "node-pool",
                          objects=[node_class(self.access, self.config, self.env_name), node_pool(self.config)],
                          depends_on=[release])
        return holder
