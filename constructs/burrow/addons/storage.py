"""Storage classes the cluster provider does not ship, created by the add-ons stack.

EKS creates no `gp3` class (recent versions create none at all), yet Burrow's RabbitMQ and
Prometheus volumes ask for one. `EbsStorageClasses` creates `gp3` (EBS CSI driver, encrypted,
`WaitForFirstConsumer` so a volume is made in the zone its pod is scheduled to, expandable)
and makes it the default, so charts that name no class (Loki) get it too.
"""

from __future__ import annotations

from dataclasses import dataclass

from burrow.addons.base import ClusterAddOn
from burrow.addons.settings import GP3
from burrow.k8s.objects import MANAGED_BY, K8sObject
from burrow.k8s.release import KubernetesObjects
from burrow.spi import ClusterInfo
from constructs import Construct

STORAGE_CLASSES = "storage-classes"  # the add-on's name; add-ons with volumes install after it
EBS_CSI_PROVISIONER = "ebs.csi.aws.com"


def gp3_storage_class(default: bool = True) -> K8sObject:
    annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if default else {}
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": GP3, "labels": dict(MANAGED_BY), "annotations": annotations},
        "provisioner": EBS_CSI_PROVISIONER,
        "parameters": {"type": "gp3", "encrypted": "true", "fsType": "ext4"},
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": True,
    }


@dataclass(frozen=True)
class EbsStorageClasses(ClusterAddOn):
    """The `gp3` StorageClass, delivered as one object release in `kube-system`."""

    name: str = STORAGE_CLASSES

    def deploy(self, scope: Construct, cluster: ClusterInfo) -> Construct:
        holder = Construct(scope, self.name)
        KubernetesObjects(
            holder,
            "objects",
            {"release_name": "burrow-storage-classes", "namespace": "kube-system", "objects": [gp3_storage_class()]},
        )
        return holder
