"""`KubernetesObjects`: deliver Burrow-built objects as one Helm release of Burrow's object chart.

Why a Helm release instead of `kubernetes_manifest`: a release plans without a live
cluster and before any CRD exists (kubernetes_manifest queries the API during plan,
hashicorp/terraform-provider-kubernetes#1367), it upgrades atomically and rolls back
on failure, and reviewers read the objects as Kubernetes objects. The chart is shipped
with the stack as a cdktf asset, so the synthesized stack is self-contained.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jsii
import yaml
from cdktf import AssetType, IResolveContext, IStringProducer, ITerraformDependable, Lazy, TerraformAsset, Token
from cdktf_cdktf_provider_helm.release import Release

from burrow.k8s.objects import K8sObject
from burrow.merge import deep_merge
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


# `${` and `%{` that do not start a cdktf token: Terraform would read them as an interpolation
# or a directive, so literal text must carry them as `$${` and `%%{`.
_TEMPLATE_START = re.compile(r"\$\{(?!TfToken\[)|%\{")


def terraform_escape(text: str) -> str:
    """Literal text as a Terraform string: `${` → `$${`, `%{` → `%%{` (cdktf tokens untouched).

    Terraform reads every string in a stack as a template; a Grafana `${datasource}` left as is
    fails `plan` with "Invalid reference". Every values document Burrow embeds goes through here.
    """
    return _TEMPLATE_START.sub(lambda match: match.group(0)[0] + match.group(0), text)


def terraform_unescape(text: str) -> str:
    """The text Terraform makes of a string without interpolations: `$${` → `${`, `%%{` → `%{`."""
    return text.replace("$${", "${").replace("%%{", "%{")


def to_yaml(doc: Mapping[str, Any]) -> str:
    """A Helm values document as block YAML a reviewer can read, keys in the order given,
    escaped for Terraform (the helm provider receives the literal text)."""
    return terraform_escape(yaml.safe_dump(dict(doc), sort_keys=False, default_flow_style=False))


def merged_values(documents: Sequence[Any]) -> dict[str, Any]:
    """Values documents as Terraform gets them (YAML text), merged in order (Helm's rule).

    Documents that are still unresolved tokens (rendered later at synth) are not mappings yet
    and are left out.
    """
    merged: dict[str, Any] = {}
    for document in documents:
        literal = terraform_unescape(document) if isinstance(document, str) else None
        parsed = yaml.safe_load(literal) if literal and not Token.is_unresolved(document) else None
        if isinstance(parsed, Mapping):
            merged = deep_merge(merged, parsed)
    return merged


def release_values(release: Release) -> dict[str, Any]:
    """The values a `helm_release` renders with: its values documents merged in order."""
    return merged_values(release.values_input or [])


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
    The guardrails read what `release` delivers (pods as a workload, Ingresses, NodePools), unless
    a construct above it answers for them.
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
        self.release_name = release_name
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


class DeliversObjects:
    """Mixin for a construct whose Kubernetes objects go out as one object release, `self.delivery`:
    `objects` is its escape hatch (read, or assign a new tuple before synth; what is assigned is
    what is delivered and what the guardrails check)."""

    delivery: KubernetesObjects

    @property
    def objects(self) -> tuple[K8sObject, ...]:
        """The Kubernetes objects, as they will be delivered (escape hatch: assignable)."""
        return self.delivery.objects

    @objects.setter
    def objects(self, value: tuple[K8sObject, ...]) -> None:
        self.delivery.objects = tuple(value)
