"""Offline, strict schema validation of Kubernetes objects (kubernetes-validate).

Only the kubernetes and helm *provider binaries* are missing on a build machine;
the object schemas ship with kubernetes-validate, so every object Burrow builds
is checked here against the OpenAPI schema of the environment's Kubernetes
version, unknown fields included.
"""

from __future__ import annotations

from collections.abc import Iterable

import kubernetes_validate
from burrow.k8s.objects import K8sObject
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError


def object_id(obj: K8sObject) -> str:
    """`Kind/namespace/name`, the way a reviewer names an object."""
    meta = obj.get("metadata", {})
    return f"{obj.get('kind')}/{meta.get('namespace', '-')}/{meta.get('name')}"


def validate_objects(objects: Iterable[K8sObject], kubernetes_version: str) -> list[str]:
    """Validate every object strictly; return one readable problem per invalid object (empty: all valid)."""
    version = f"{kubernetes_version}.0" if kubernetes_version.count(".") == 1 else kubernetes_version
    problems = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except ValidationError as exc:
            where = ".".join(str(p) for p in exc.path) or "<object>"
            problems.append(f"{object_id(obj)}: {where}: {exc.message}")
        except SchemaNotFoundError:
            problems.append(f"{object_id(obj)}: no schema for {obj.get('apiVersion')} {obj.get('kind')} in {version}")
    return problems
