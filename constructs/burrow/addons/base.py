"""The add-on interface and the generic Helm add-on that the chart-based add-ons share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cdktf import ITerraformDependable, TerraformStack
from cdktf_cdktf_provider_helm.provider import HelmProvider
from cdktf_cdktf_provider_helm.release import Release
from cdktf_cdktf_provider_kubernetes.namespace_v1 import NamespaceV1, NamespaceV1Metadata

from burrow.errors import PropsError
from burrow.k8s.objects import MANAGED_BY
from burrow.k8s.release import to_yaml
from burrow.pins import pin_of
from burrow.scope import stack_singleton
from burrow.spi import ClusterInfo
from constructs import Construct

# Namespaces every cluster has; nobody creates or owns them.
SYSTEM_NAMESPACES = ("kube-system", "kube-public", "default")

def owned_namespace(scope: Construct, name: str) -> NamespaceV1 | None:
    """The stack's one `kubernetes_namespace_v1` for `name`, created on first use (None for system
    namespaces). Every release in the namespace depends on it and never creates it itself, so a
    namespace has exactly one owner and nothing races to create it."""
    if name in SYSTEM_NAMESPACES:
        return None
    providers = ClusterInfo.providers_of(scope)
    return stack_singleton(
        scope,
        f"namespace-{name}",
        lambda stack, id: NamespaceV1(
            stack, id, metadata=NamespaceV1Metadata(name=name, labels=dict(MANAGED_BY)), provider=providers.kubernetes
        ),
    )


def installed_addons(scope: Construct) -> list[str]:
    """The add-ons deployed so far in `scope`'s stack (each holds at least one helm_release)."""
    return [
        child.node.id
        for child in TerraformStack.of(scope).node.children
        if any(isinstance(node, Release) for node in child.node.find_all())
    ]


def release_of(scope: Construct, addon_name: str) -> Release | None:
    """The helm_release of the add-on `addon_name` deployed earlier in `scope`'s stack, if any: its
    chart's release (`HelmAddOn.release` directly under the add-on), else its first release."""
    holder = TerraformStack.of(scope).node.try_find_child(addon_name)
    if holder is None:
        return None
    chart = holder.node.try_find_child("release")
    if isinstance(chart, Release):
        return chart
    return next((node for node in holder.node.find_all() if isinstance(node, Release)), None)


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
    #: Add-ons that must be installed before this one (Alloy after Loki, a chart that renders a
    #: ServiceMonitor after kube-prometheus-stack, which installs the CRD). Each must be deployed
    #: earlier in the same stack: a name that finds nothing stops synthesis (a typo, or an add-on the
    #: environment does not have), never a silently missing dependency.
    after: tuple[str, ...] = ()
    #: Add-ons installed before this one when the stack has them and legitimately absent otherwise
    #: (volumes after the `storage-classes` EKS gets; an existing cluster brings its own). Name them by
    #: the constant their module exports, so a typo fails at import.
    after_if_present: tuple[str, ...] = ()
    #: Leave the chart's CRDs alone (a separate CRD chart, installed first, owns and upgrades them).
    skip_crds: bool = False
    #: Digests of the chart's images, by the name its pin gives each (`burrow.pins.ChartImage`;
    #: `{"grafana": "sha256:…"}`), set in its values where the chart takes them, over `values`.
    #: Production sets one per image (a release's `third_party` digests). default: none (the chart's tags)
    digests: Mapping[str, str] = field(default_factory=dict)

    def deploy(self, scope: Construct, cluster: ClusterInfo) -> Construct:
        holder = Construct(scope, self.name)
        self.release(holder, ClusterInfo.providers_of(scope).helm)
        return holder

    def release(self, scope: Construct, helm: HelmProvider, depends_on: Sequence[ITerraformDependable] = ()) -> Release:
        """The chart's helm_release under `scope` (for add-ons that add resources around it),
        after its namespace and the add-ons named in `after`."""
        namespace = owned_namespace(scope, self.namespace)
        earlier = [self._required(scope, name) for name in self.after]
        earlier += [r for r in (release_of(scope, name) for name in self.after_if_present) if r is not None]
        needs = [*([namespace] if namespace is not None else []), *earlier, *depends_on]
        values = self._pinned_values(scope)
        return Release(
            scope,
            "release",
            name=self.name,
            namespace=self.namespace,
            create_namespace=False,
            repository=self.repository,
            chart=self.chart,
            version=self.version,
            values=[to_yaml(values)] if values else None,
            atomic=True,
            cleanup_on_fail=True,
            wait=True,
            max_history=10,
            skip_crds=True if self.skip_crds else None,
            provider=helm,
            depends_on=needs or None,
        )

    def _pinned_values(self, scope: Construct) -> Mapping[str, Any]:
        """`values` with `digests` set at the paths the chart's pin names."""
        if not self.digests:
            return self.values
        pin = pin_of(self.chart)
        try:
            if pin is None:
                raise KeyError(f"chart {self.chart} has no pin in burrow.pins, which names where its images' digests go")
            return pin.pinned_values(self.values, self.digests)
        except (KeyError, ValueError) as exc:
            raise PropsError(f"{TerraformStack.of(scope).node.id}/{self.name}", "digests", dict(self.digests),
                             str(exc).strip("'\"")) from None

    def _required(self, scope: Construct, name: str) -> Release:
        found = release_of(scope, name)
        if found is None:
            installed = ", ".join(installed_addons(scope)) or "none"
            raise PropsError(
                f"{TerraformStack.of(scope).node.id}/{self.name}",
                "after",
                self.after,
                f"no add-on {name!r} is installed before {self.name} in this stack (installed before it: "
                f"{installed}); name one of those, install {name!r} first, or use after_if_present for an "
                "add-on the environment may leave out",
            )
        return found
