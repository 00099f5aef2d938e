"""`AppNamespace`: the environment's namespace, with Pod Security Admission enforcing `restricted`."""

from __future__ import annotations

from cdktf_cdktf_provider_kubernetes.namespace_v1 import NamespaceV1, NamespaceV1Metadata

from burrow.k8s.objects import MANAGED_BY
from burrow.spi import ClusterInfo
from constructs import Construct

PSA_LEVEL = "restricted"


class AppNamespace(Construct):
    """A namespace whose pods must meet the `restricted` Pod Security Standard.

    Escape hatch: `resource` (the `kubernetes_namespace_v1`).
    """

    def __init__(self, scope: Construct, id: str, *, name: str) -> None:
        super().__init__(scope, id)
        self.name = name
        labels = {
            **MANAGED_BY,
            **{f"pod-security.kubernetes.io/{mode}": PSA_LEVEL for mode in ("enforce", "audit", "warn")},
        }
        self.resource = NamespaceV1(
            self,
            "namespace",
            metadata=NamespaceV1Metadata(name=name, labels=labels),
            provider=ClusterInfo.providers_of(self).kubernetes,
        )
