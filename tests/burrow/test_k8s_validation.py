"""Every Kubernetes object Burrow builds passes strict schema validation for its environment's version."""

from __future__ import annotations

import copy

import pytest

from burrow.k8s.validate import validate_objects
from tests.conftest import ENVIRONMENTS


def version_of(synthesized, env: str) -> str:
    return next(b.env.kubernetes.version for b in synthesized.built if b.env.name == env)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_object_is_valid_for_the_environment_kubernetes_version(synthesized, env):
    objects = synthesized.objects(env)
    assert {o["kind"] for o in objects} >= {"Deployment", "Service", "ServiceAccount"}
    assert validate_objects(objects, version_of(synthesized, env)) == []


def test_validation_is_strict_about_unknown_fields(synthesized):
    deployment = copy.deepcopy(next(o for o in synthesized.objects("prod") if o["kind"] == "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    problems = validate_objects([deployment], "1.33")
    assert len(problems) == 1
    assert problems[0].startswith("Deployment/burrow-prod/")
    assert "livenessProbes" in problems[0]


def test_validation_catches_a_wrong_type(synthesized):
    service = copy.deepcopy(next(o for o in synthesized.objects("dev") if o["kind"] == "Service"))
    service["spec"]["ports"][0]["port"] = "http"
    assert len(validate_objects([service], "1.33")) == 1


def test_exported_yaml_holds_the_same_objects(synthesized, tmp_path):
    import yaml

    from burrow.synth import export_objects

    built = next(b for b in synthesized.built if b.env.name == "prod")
    paths = export_objects(built, tmp_path)  # one file per region, the primary's first
    assert paths == [tmp_path / "objects" / "prod.yaml", tmp_path / "objects" / "prod-us-east-1.yaml"]
    exported = [obj for path in paths for obj in yaml.safe_load_all(path.read_text())]
    assert exported == synthesized.objects("prod")
