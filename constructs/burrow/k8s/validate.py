"""Offline, strict schema validation of Kubernetes objects (kubernetes-validate).

Only the kubernetes and helm *provider binaries* are missing on a build machine;
the object schemas ship with kubernetes-validate, so every object Burrow builds
is checked here against the OpenAPI schema of the environment's Kubernetes
version, unknown fields included.
"""

from __future__ import annotations

from collections.abc import Iterable

import kubernetes_validate
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

from burrow.k8s.objects import K8sObject


def object_id(obj: K8sObject) -> str:
    """`Kind/namespace/name`, the way a reviewer names an object."""
    meta = obj.get("metadata", {})
    return f"{obj.get('kind')}/{meta.get('namespace', '-')}/{meta.get('name')}"


def is_custom_resource(obj: K8sObject) -> bool:
    """True for objects of a CRD (keda.sh, monitoring.coreos.com, …): Kubernetes' schema does not cover them."""
    api_version = obj.get("apiVersion", "")
    group = api_version.split("/")[0] if "/" in api_version else ""
    return "." in group and not group.endswith(".k8s.io")


def validate_objects(objects: Iterable[K8sObject], kubernetes_version: str) -> list[str]:
    """Validate every built-in object strictly; return one readable problem per invalid object.

    Custom resources are not in Kubernetes' schema; their fields are pinned by property tests.
    """
    version = f"{kubernetes_version}.0" if kubernetes_version.count(".") == 1 else kubernetes_version
    problems = []
    for obj in objects:
        if is_custom_resource(obj):
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except ValidationError as exc:
            where = ".".join(str(p) for p in exc.path) or "<object>"
            problems.append(f"{object_id(obj)}: {where}: {exc.message}")
        except SchemaNotFoundError:
            problems.append(f"{object_id(obj)}: no schema for {obj.get('apiVersion')} {obj.get('kind')} in {version}")
    return problems
