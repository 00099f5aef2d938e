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
from typing import Annotated, Any

import jsii
import yaml
from cdktf import AssetType, IResolveContext, IStringProducer, ITerraformDependable, Lazy, TerraformAsset, Token
from cdktf_cdktf_provider_helm.release import Release
from pydantic import AfterValidator, Field, InstanceOf

from burrow.k8s.objects import K8sObject
from burrow.merge import deep_merge
from burrow.props import Props, child_path, props_for
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


#: A Helm release name (Helm allows 53 characters) and a namespace name (a DNS label).
MAX_RELEASE_NAME = 53
RELEASE_NAME = rf"^[a-z0-9]([-a-z0-9]{{0,{MAX_RELEASE_NAME - 2}}}[a-z0-9])?$"
NAMESPACE_NAME = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


def _kubernetes_object(obj: K8sObject) -> K8sObject:
    """An object the chart can deliver names its `apiVersion` and `kind`; it is kept as it is (not
    copied), so the caller's dict stays the one delivered and edits to it before synth count."""
    missing = [key for key in ("apiVersion", "kind") if not obj.get(key)]
    if missing:
        raise ValueError(f"a Kubernetes object needs {' and '.join(missing)}")
    return obj


class KubernetesObjectsProps(Props):
    """Props of `KubernetesObjects`. Required: `release_name` and `namespace`."""

    #: The helm_release's name; unique in its namespace (checked at synth).
    release_name: str = Field(pattern=RELEASE_NAME)
    #: The namespace the release (and every namespaced object without its own) lives in.
    namespace: str = Field(pattern=NAMESPACE_NAME)
    #: The objects to deliver, in native shape (dicts as `kubectl apply` reads them). default: none
    objects: tuple[Annotated[InstanceOf[dict], AfterValidator(_kubernetes_object)], ...] = ()


class KubernetesObjects(Construct):
    """A Helm release of Burrow's object chart carrying `objects`.

    `props` is a `KubernetesObjectsProps` or a mapping of its fields (validated here, so a mistake
    names this construct's path); `depends_on` is what the release waits for (construct references,
    not props). Escape hatches, the shape every construct that delivers Kubernetes objects shares:
    `objects` (what is delivered, in native shape; assign a new tuple or edit the dicts in place
    before synth) and `release` (the underlying `helm_release`, for overrides). The guardrails read
    what `release` delivers (pods as a workload, Ingresses, NodePools), unless a construct above it
    answers for them.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        props: KubernetesObjectsProps | Mapping[str, Any],
        *,
        depends_on: Sequence[ITerraformDependable] = (),
    ) -> None:
        props = props_for(child_path(scope, id), KubernetesObjectsProps, props)
        super().__init__(scope, id)
        self.props = props
        self.objects: tuple[K8sObject, ...] = props.objects
        self.namespace = props.namespace
        self.release_name = props.release_name
        self.release = Release(
            self,
            "release",
            name=props.release_name,
            namespace=props.namespace,
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
    """Mixin for a construct whose Kubernetes objects go out as one object release, `self.delivery`.

    The one escape-hatch shape of every construct that delivers Kubernetes objects (`QueueWorker`,
    `RabbitMqBroker`, `AppNamespace`, `PublicIngress`, `KarpenterNodePool`), with the names
    `KubernetesObjects` itself has: `objects`, a tuple of the objects in native shape (read it, edit
    its dicts in place, or assign a new tuple before synth; what is there at synth is what is
    delivered and what the guardrails check), and `delivery`, the `KubernetesObjects` carrying them
    (`delivery.release` is the helm_release, for overrides; None when the construct delivers no
    object). Objects in their Kubernetes shape, not a Burrow type, are what a team already knows how
    to edit, and one shape means one way to reach any of them.
    """

    delivery: KubernetesObjects | None

    @property
    def objects(self) -> tuple[K8sObject, ...]:
        """The Kubernetes objects, as they will be delivered (escape hatch: assignable)."""
        return self.delivery.objects if self.delivery is not None else ()

    @objects.setter
    def objects(self, value: tuple[K8sObject, ...]) -> None:
        if self.delivery is None:
            raise AttributeError("this construct delivers no Kubernetes objects, so it has none to replace")
        self.delivery.objects = tuple(value)
