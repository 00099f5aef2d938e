"""What a third-party chart puts on a cluster: the typed declaration each add-on gives of its chart
(`ChartKinds`), which the first-deploy rehearsal reads and `make verify-charts` checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from burrow.pins import value_at

#: An object's type as the API server serves it: (apiVersion, kind).
Kind = tuple[str, str]
#: A custom resource type as a CRD defines it, whatever versions it serves: (group, kind).
GroupKind = tuple[str, str]

SERVICE_MONITOR: Kind = ("monitoring.coreos.com/v1", "ServiceMonitor")
RBAC = "rbac.authorization.k8s.io/v1"
CLUSTER_RBAC: tuple[Kind, ...] = ((RBAC, "ClusterRole"), (RBAC, "ClusterRoleBinding"))
NAMESPACE_RBAC: tuple[Kind, ...] = ((RBAC, "Role"), (RBAC, "RoleBinding"))
DEPLOYMENT: Kind = ("apps/v1", "Deployment")
PDB: Kind = ("policy/v1", "PodDisruptionBudget")
WEBHOOKS: tuple[Kind, ...] = (("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
                              ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"))


def core(*kinds: str) -> tuple[Kind, ...]:
    """Kinds of the core API group (`v1`)."""
    return tuple(("v1", kind) for kind in kinds)


def group_kinds(group: str, *kinds: str) -> tuple[GroupKind, ...]:
    return tuple((group, kind) for kind in kinds)


@dataclass(frozen=True)
class ChartKinds:
    """What a pinned third-party chart puts on the cluster with Burrow's values, and what it needs
    there first: read by the first-deploy rehearsal (`make rehearse`), checked against the real
    chart by `make verify-charts`.

    `kinds` are rendered always, `when` only while a value is true (`{"serviceMonitor.enabled":
    (("monitoring.coreos.com/v1", "ServiceMonitor"),)}`); `crds` are the CRDs the chart installs
    (group and kind); `secrets` and `storage_classes` are value paths
    naming a Secret its pods need but it does not create, and a StorageClass its claims name."""

    chart: str
    kinds: tuple[Kind, ...]
    when: Mapping[str, tuple[Kind, ...]] = field(default_factory=dict)
    crds: tuple[GroupKind, ...] = ()
    secrets: tuple[str, ...] = ()
    storage_classes: tuple[str, ...] = ()

    def rendered(self, values: Mapping[str, Any]) -> set[Kind]:
        """The kinds the chart renders with `values` (CRDs apart)."""
        return {*self.kinds, *(kind for path, kinds in self.when.items() if value_at(values, path) is True
                               for kind in kinds)}

    def named(self, paths: Sequence[str], values: Mapping[str, Any]) -> list[str]:
        """The names `values` sets at `paths` (`secrets`, `storage_classes`), unset ones left out."""
        return [name for name in (value_at(values, path) for path in paths) if isinstance(name, str) and name]
