"""The add-on interface and the generic Helm add-on that the chart-based add-ons share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_helm.provider import HelmProvider
from cdktf_cdktf_provider_helm.release import Release

from burrow.k8s.release import to_yaml
from burrow.spi import ClusterInfo
from constructs import Construct


class ClusterAddOn(ABC):
    """Something installed on a cluster. `deploy` runs in a stack whose providers talk to it."""

    name: str

    @abstractmethod
    def deploy(self, scope: Construct, cluster: ClusterInfo) -> Construct:
        """Add the add-on's resources under `scope`; return the construct that holds them."""


@dataclass(frozen=True)
class HelmAddOn(ClusterAddOn):
    """An add-on installed from a pinned chart. Each subclass pins its chart in one place."""

    name: str
    repository: str
    chart: str
    version: str
    namespace: str
    values: Mapping[str, Any] = field(default_factory=dict)

    def deploy(self, scope: Construct, cluster: ClusterInfo) -> Construct:
        holder = Construct(scope, self.name)
        self.release(holder, ClusterInfo.providers_of(scope).helm)
        return holder

    def release(self, scope: Construct, helm: HelmProvider, depends_on: Sequence[ITerraformDependable] = ()) -> Release:
        """The chart's helm_release under `scope` (for add-ons that add resources around it)."""
        return Release(
            scope,
            "release",
            name=self.name,
            namespace=self.namespace,
            create_namespace=True,
            repository=self.repository,
            chart=self.chart,
            version=self.version,
            values=[to_yaml(self.values)] if self.values else None,
            atomic=True,
            cleanup_on_fail=True,
            wait=True,
            max_history=10,
            provider=helm,
            depends_on=list(depends_on) or None,
        )
