"""Burrow's object chart rendered by a real Helm v3, exactly as the helm provider renders it.

For every environment and every release of `helm/burrow-objects`: the release name, namespace
and values are read from the synthesized `cdk.tf.json` (Terraform's string escapes undone, as
Terraform would), `helm template` renders them, and the result must be the objects Burrow
built, pass strict schema validation for the environment's Kubernetes version, and meet the
`restricted` Pod Security Standard that the app namespace enforces.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from burrow.config.loader import load_environment
from burrow.k8s.pod_security import pod_specs, restricted_violations
from burrow.k8s.release import terraform_unescape
from burrow.k8s.validate import object_id, validate_objects
from burrow_tools.helm import manifests, run_helm
from tests.conftest import APP_STACK_ENVIRONMENTS, ENVIRONMENTS
from tests.support.services import ROOT

OBJECT_CHART = "burrow-objects-chart"


def object_releases(stack: dict) -> list[dict]:
    return [r for r in stack["resource"].get("helm_release", {}).values() if OBJECT_CHART in r["chart"]]


def render(helm: str, stack_dir: Path, release: dict, work: Path) -> list[dict]:
    """`helm template` with the release's own name, namespace and values documents, in order."""
    files = []
    for index, values in enumerate(release["values"]):
        path = work / f"{release['name']}-{index}.yaml"
        path.write_text(terraform_unescape(values))
        files += ["--values", str(path)]
    result = run_helm(helm, "template", release["name"], str(stack_dir / release["chart"]),
                      "--namespace", release["namespace"], *files)
    assert result.returncode == 0, result.stderr
    return manifests(result.stdout)


@pytest.fixture(scope="module")
def rendered(synthesized, helm, tmp_path_factory) -> dict[str, list[dict]]:
    work = tmp_path_factory.mktemp("helm-values")
    found: dict[str, list[dict]] = {}
    for env in ENVIRONMENTS:
        prefixes = [view.stack_prefix for view in load_environment(env, ROOT / "environments").regional()]
        for name in (f"{prefix}-{layer}" for prefix in prefixes for layer in ("addons", "app")):
            if name not in synthesized.stacks:
                continue  # a GitOps environment's app layer (test_gitops builds it with kustomize)
            stack_dir = synthesized.outdir / "stacks" / name
            for release in object_releases(synthesized.stack(name)):
                found.setdefault(env, []).extend(render(helm, stack_dir, release, work))
    return found


def test_every_environment_delivers_objects_through_the_chart(rendered):
    assert set(rendered) == set(ENVIRONMENTS)
    assert all(len(rendered[env]) >= 10 for env in APP_STACK_ENVIRONMENTS)
    assert len(rendered["uat"]) >= 5  # its app layer goes through Flux (test_gitops)


def references_named(value):
    """Terraform references (`${data.terraform_remote_state…}` in the JSON, `${TfToken[…]}` in the
    construct before synthesis) as one placeholder: both name the same cross-stack value."""
    if isinstance(value, dict):
        return {key: references_named(item) for key, item in value.items()}
    if isinstance(value, list):
        return [references_named(item) for item in value]
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        return "<terraform reference>"
    return value


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_helm_renders_exactly_the_objects_burrow_built(env, rendered, synthesized):
    built = sorted(synthesized.stack_objects(env), key=object_id)
    assert references_named(sorted(rendered[env], key=object_id)) == references_named(json.loads(json.dumps(built)))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_rendered_objects_pass_strict_schema_validation(env, rendered):
    version = load_environment(env, ROOT / "environments").kubernetes.version
    assert validate_objects(rendered[env], version) == []


@pytest.mark.parametrize("env", APP_STACK_ENVIRONMENTS)
def test_rendered_pods_in_the_app_namespace_meet_pod_security_restricted(env, rendered):
    namespace = load_environment(env, ROOT / "environments").namespace
    pods = [(object_id(obj), pod) for obj in rendered[env] if obj["metadata"].get("namespace") == namespace
            for pod in pod_specs(obj)]
    assert len(pods) >= 2
    assert {name: restricted_violations(pod) for name, pod in pods} == {name: [] for name, _ in pods}


def test_the_restricted_check_finds_what_admission_would_refuse():
    pod = {
        "hostNetwork": True,
        "volumes": [{"name": "root", "hostPath": {"path": "/"}}],
        "initContainers": [{"name": "setup", "securityContext": {"runAsUser": 0}}],
        "containers": [
            {
                "name": "app",
                "ports": [{"containerPort": 80, "hostPort": 80}],
                "securityContext": {
                    "runAsNonRoot": True,
                    "allowPrivilegeEscalation": False,
                    "seccompProfile": {"type": "Unconfined"},
                    "capabilities": {"drop": ["ALL"], "add": ["NET_ADMIN", "NET_BIND_SERVICE"]},
                },
            }
        ],
    }
    found = restricted_violations(pod)
    assert "pod: hostNetwork must be false" in found
    assert "pod: volume root of type hostPath is not allowed" in found
    assert "init container setup: set allowPrivilegeEscalation: false" in found
    assert "init container setup: runAsUser must not be 0" in found
    assert "container app: seccompProfile.type must be RuntimeDefault or Localhost (is Unconfined)" in found
    assert "container app: may add only NET_BIND_SERVICE (adds NET_ADMIN)" in found
    assert "container app: must not use hostPort" in found


def test_helm_lints_the_object_chart_with_real_values(synthesized, helm, tmp_path):
    stack_dir = synthesized.outdir / "stacks" / "prod-app"
    release = object_releases(synthesized.stack("prod-app"))[0]
    values = tmp_path / "values.yaml"
    values.write_text(terraform_unescape(release["values"][0]))
    result = run_helm(helm, "lint", "--strict", str(stack_dir / release["chart"]), "--values", str(values))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


def test_helm_refuses_a_broken_object_chart(helm, tmp_path):
    """The render path fails loudly: a template error is Helm's error, not an empty render."""
    chart = tmp_path / "broken"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text((ROOT / "helm" / "burrow-objects" / "Chart.yaml").read_text())
    (chart / "templates" / "objects.yaml").write_text("{{ range .Values.objects }}\n")
    result = run_helm(helm, "template", "x", str(chart))
    assert result.returncode != 0
    assert "parse error" in result.stderr
