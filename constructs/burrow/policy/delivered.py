"""What a provider resource delivers to a cluster, read from the resource as Terraform will get it.

The guardrails police every `helm_release` and `kubernetes_manifest` in a stack, whichever
construct (or a stack's own code) added it. A resource under a `Policed` construct is answered
for by that construct; any other is read here, through the lowest layer (its resource type and
its attributes, overrides included), never through the class that made it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml
from cdktf import TerraformResource

from burrow.k8s.release import merged_values
from burrow.pins import PINS
from burrow.policy.facts import PolicyFacts, object_facts
from burrow.synthesized import resource_attributes

#: The resource types that put Kubernetes objects or chart values on a cluster.
DELIVERING_TYPES = ("helm_release", "kubernetes_manifest")


def _set_value(values: dict[str, Any], dotted: str, value: Any) -> None:
    """One `set` entry of a release (`a.b.c`, dots escaped as `\\.`) applied to `values`, as Helm does."""
    keys = [key.replace("\0", ".") for key in dotted.replace("\\.", "\0").split(".")]
    target = values
    for key in keys[:-1]:
        if not isinstance(target.get(key), dict):
            target[key] = {}
        target = target[key]
    target[keys[-1]] = value


def chart_values(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The values a `helm_release` renders with: its values documents merged in order, then each
    `set` (a literal string for `type: string`, else read as YAML the way Helm reads `--set`)."""
    merged = merged_values(attributes.get("values") or [])
    for entry in attributes.get("set") or []:
        raw = entry.get("value")
        value = raw if entry.get("type") == "string" or not isinstance(raw, str) else yaml.safe_load(raw)
        _set_value(merged, str(entry.get("name", "")), value)
    return merged


def _inline_objects(values: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Kubernetes objects a release carries in its values (Burrow's object chart: `objects`)."""
    listed = values.get("objects")
    if not isinstance(listed, list):
        return []
    return [obj for obj in listed if isinstance(obj, Mapping) and "kind" in obj and "apiVersion" in obj]


def delivered_facts(resource: TerraformResource) -> tuple[PolicyFacts, ...]:
    """Facts for one provider resource: a manifest's object; a release's inline objects and the
    rest of its values (a chart Burrow did not write: its images and security settings)."""
    kind = resource.terraform_resource_type
    if kind not in DELIVERING_TYPES:
        return ()
    attributes = resource_attributes(resource)
    if kind == "kubernetes_manifest":
        manifest = attributes.get("manifest")
        return object_facts([manifest]) if isinstance(manifest, Mapping) else ()
    values = chart_values(attributes)
    inline = _inline_objects(values)
    rest = {key: value for key, value in values.items() if key != "objects" or not inline}
    # A chart with images is policed even without values: production pins its images by digest.
    chart = str(attributes.get("chart") or "")
    charted = bool(rest) or bool((pin := PINS.get(chart)) and pin.images)
    return (*object_facts(inline), *([PolicyFacts("chart", chart_values=rest, chart=chart,
                                                  release=str(attributes.get("name") or ""))] if charted else []))
