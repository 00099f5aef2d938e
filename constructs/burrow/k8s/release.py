"""`KubernetesObjects`: deliver Burrow-built objects as one Helm release of Burrow's object chart.

Why a Helm release instead of `kubernetes_manifest`: a release plans without a live
cluster and before any CRD exists (kubernetes_manifest queries the API during plan,
hashicorp/terraform-provider-kubernetes#1367), it upgrades atomically and rolls back
on failure, and reviewers read the objects as Kubernetes objects. The chart is shipped
with the stack as a cdktf asset, so the synthesized stack is self-contained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jsii
import yaml
from cdktf import AssetType, IResolveContext, IStringProducer, ITerraformDependable, Lazy, TerraformAsset
from cdktf_cdktf_provider_helm.release import Release

from burrow.k8s.objects import K8sObject
from burrow.scope import stack_singleton
from burrow.spi import ClusterInfo
from constructs import Construct

_CHART_ASSET_ID = "burrow-objects-chart"


def object_chart_dir() -> Path:
    """Burrow's generic object chart: `helm/burrow-objects` in a checkout, packaged data when installed."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "_chart"
    return installed if installed.is_dir() else package.parents[1] / "helm" / "burrow-objects"


def _chart_asset(scope: Construct) -> TerraformAsset:
    """One copy of the chart per stack, however many releases use it."""
    return stack_singleton(
        scope,
        _CHART_ASSET_ID,
        lambda stack, id: TerraformAsset(stack, id, path=str(object_chart_dir()), type=AssetType.DIRECTORY),
    )


def to_yaml(doc: Mapping[str, Any]) -> str:
    """A Helm values document as block YAML a reviewer can read, keys in the order given."""
    return yaml.safe_dump(dict(doc), sort_keys=False, default_flow_style=False)


@jsii.implements(IStringProducer)
class _ObjectsValues:
    """Renders the release's values at synth time, so later edits to `objects` are delivered."""

    def __init__(self, owner: KubernetesObjects) -> None:
        self._owner = owner

    def produce(self, _context: IResolveContext) -> str:
        return to_yaml({"objects": list(self._owner.objects)})


class KubernetesObjects(Construct):
    """A Helm release of Burrow's object chart carrying `objects`.

    Escape hatches: `objects` (what is delivered, in native shape; replace it or edit the
    dicts in place before synth) and `release` (the underlying `helm_release`, for overrides).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        release_name: str,
        namespace: str,
        objects: Sequence[K8sObject],
        depends_on: Sequence[ITerraformDependable] = (),
    ) -> None:
        super().__init__(scope, id)
        self.objects: tuple[K8sObject, ...] = tuple(objects)
        self.namespace = namespace
        self.release = Release(
            self,
            "release",
            name=release_name,
            namespace=namespace,
            chart=_chart_asset(self).path,
            values=[Lazy.string_value(_ObjectsValues(self))],
            atomic=True,
            cleanup_on_fail=True,
            wait=True,
            max_history=10,
            provider=ClusterInfo.providers_of(self).helm,
            depends_on=list(depends_on) or None,
        )
