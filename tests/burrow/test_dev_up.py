"""`make dev-up`: what can be checked without Docker. The kind configuration fits the configuration
schema of the kind version the Makefile pins, and the synthesized `dev` stacks name exactly the
kubeconfig context, registry and images that `make dev-up` makes.

The schema below is the `kind.x-k8s.io/v1alpha4` API of kind v0.32.0 (pkg/apis/config/v1alpha4/
types.go at tag v0.32.0: each struct's JSON field names and types, and the allowed values of its
string enums), written out here; kind decodes the file strictly, so an unknown field fails
`kind create cluster`."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest
import yaml

from burrow_tools.rehearse import deploy_of, rehearse
from tests.support.services import ROOT

KIND_VERSION = "v0.32.0"
API_VERSION = "kind.x-k8s.io/v1alpha4"
PATCH = {"group": str, "version": str, "kind": str, "patch": str}
MOUNT = {
    "containerPath": str,
    "hostPath": str,
    "readOnly": bool,
    "selinuxRelabel": bool,
    "propagation": ("None", "HostToContainer", "Bidirectional"),
}
PORT_MAPPING = {"containerPort": int, "hostPort": int, "listenAddress": str, "protocol": ("TCP", "UDP", "SCTP")}
NODE = {
    "role": ("control-plane", "worker"),
    "image": str,
    "labels": {str: str},
    "extraMounts": [MOUNT],
    "extraPortMappings": [PORT_MAPPING],
    "kubeadmConfigPatches": [str],
    "kubeadmConfigPatchesJSON6902": [PATCH],
}
NETWORKING = {
    "ipFamily": ("ipv4", "ipv6", "dual"),
    "apiServerPort": int,
    "apiServerAddress": str,
    "podSubnet": str,
    "serviceSubnet": str,
    "disableDefaultCNI": bool,
    "kubeProxyMode": ("iptables", "ipvs", "nftables", "none"),
    "dnsSearch": [str],
}
CLUSTER = {
    "kind": ("Cluster",),
    "apiVersion": (API_VERSION,),
    "name": str,
    "nodes": [NODE],
    "networking": NETWORKING,
    "featureGates": {str: bool},
    "runtimeConfig": {str: str},
    "kubeadmConfigPatches": [str],
    "kubeadmConfigPatchesJSON6902": [PATCH],
    "containerdConfigPatches": [str],
    "containerdConfigPatchesJSON6902": [str],
}


def schema_problems(value: Any, schema: Any, where: str = "") -> list[str]:
    """Where `value` does not fit `schema`: a type, a tuple of allowed strings, `[item]`, `{key type:
    value type}`, or a struct (field -> schema; any other field is unknown)."""
    here = where or "<root>"
    if isinstance(schema, tuple):
        return [] if value in schema else [f"{here}: {value!r} is not one of {list(schema)}"]
    if isinstance(schema, type):
        fits = isinstance(value, schema) and not (schema is int and isinstance(value, bool))
        return [] if fits else [f"{here}: {value!r} is not a {schema.__name__}"]
    if not isinstance(value, type(schema)):
        return [f"{here}: expected a {'list' if isinstance(schema, list) else 'mapping'}"]
    return collection_problems(value, schema, where)


def collection_problems(value: list | dict, schema: list | dict, where: str) -> list[str]:
    if isinstance(schema, list):
        return [p for i, item in enumerate(value) for p in schema_problems(item, schema[0], f"{where}[{i}]")]
    if list(schema) in ([str], [int]):  # a map: every key of that type, every value of the value type
        key_type, value_type = next(iter(schema.items()))
        return [
            p
            for k, v in value.items()
            for p in [*schema_problems(k, key_type, f"{where}.{k}"), *schema_problems(v, value_type, f"{where}.{k}")]
        ]
    found = []
    for key, item in value.items():
        path = f"{where}.{key}" if where else key
        found += [f"{path}: unknown field"] if key not in schema else schema_problems(item, schema[key], path)
    return found


def makefile_variables() -> dict[str, str]:
    text = (ROOT / "Makefile").read_text()
    raw = dict(re.findall(r"^([A-Z_]+) :?= (.*)$", text, re.M))
    return {
        name: re.sub(r"\$\((\w+)\)", lambda m: raw.get(m.group(1), m.group(0)), value) for name, value in raw.items()
    }


@pytest.fixture(scope="module")
def kind_config() -> dict:
    return yaml.safe_load((ROOT / makefile_variables()["KIND_CONFIG"]).read_text())


def test_the_makefile_pins_the_kind_version_the_schema_was_taken_from():
    assert makefile_variables()["KIND_VERSION"] == KIND_VERSION


def test_the_kind_configuration_fits_the_pinned_kind_schema(kind_config):
    assert schema_problems(kind_config, CLUSTER) == []


def test_the_checker_refuses_unknown_fields_wrong_types_and_values():
    bad = {
        "kind": "Cluster",
        "apiVersion": "kind.x-k8s.io/v1alpha3",
        "nodes": [{"role": "master", "replicas": 2}],
        "networking": {"apiServerPort": "6443", "disableDefaultCNI": "yes"},
        "featureGates": {"X": "on"},
    }
    assert schema_problems(bad, CLUSTER) == [
        "apiVersion: 'kind.x-k8s.io/v1alpha3' is not one of ['kind.x-k8s.io/v1alpha4']",
        "nodes[0].role: 'master' is not one of ['control-plane', 'worker']",
        "nodes[0].replicas: unknown field",
        "networking.apiServerPort: '6443' is not a int",
        "networking.disableDefaultCNI: 'yes' is not a bool",
        "featureGates.X: 'on' is not a bool",
    ]


def test_the_dev_stacks_talk_to_the_cluster_dev_up_creates(synthesized, kind_config):
    variables = makefile_variables()
    assert kind_config["name"] == variables["KIND_CLUSTER"]
    for stack in ("dev-addons", "dev-app"):
        for provider in ("kubernetes",):
            settings = synthesized.stack(stack)["provider"][provider][0]
            assert settings["config_context"] == f"kind-{variables['KIND_CLUSTER']}"
        assert (
            synthesized.stack(stack)["provider"]["helm"][0]["kubernetes"]["config_context"]
            == f"kind-{variables['KIND_CLUSTER']}"
        )


def test_the_dev_stacks_run_exactly_the_images_dev_up_pushes(synthesized):
    variables = makefile_variables()
    assert variables["DEV_REGISTRY"] == "localhost:5001"
    loop = re.search(r"for svc in ([\w ]+); do \\\n\t  docker build", (ROOT / "Makefile").read_text())
    assert loop, "dev-up builds no images"
    services = loop.group(1).split()
    pushed = {f"{variables['DEV_REGISTRY']}/burrow/{svc}:{variables['DEV_TAG']}" for svc in services}
    running = {
        c["image"]
        for obj in synthesized.stack_objects("dev")
        if obj.get("kind") == "Deployment"
        for c in obj["spec"]["template"]["spec"]["containers"]
    }
    assert running == pushed
    assert all((ROOT / "apps" / svc / "Dockerfile").is_file() for svc in services)


def test_dev_comes_up_clean_on_the_kubernetes_version_of_the_kind_node_image(synthesized, kind_config):
    images = {node["image"] for node in kind_config["nodes"]}
    assert len(images) == 1 and "@sha256:" in next(iter(images))
    minor = re.search(r"kindest/node:v(\d+\.\d+)\.\d+@", next(iter(images))).group(1)
    built = next(b for b in synthesized.built if b.env.name == "dev")
    deploy = deploy_of(built, synthesized.stacks, synthesized.outdir)
    on_node = replace(
        deploy,
        env=deploy.env.model_copy(update={"kubernetes": deploy.env.kubernetes.model_copy(update={"version": minor})}),
    )
    result = rehearse(on_node)
    assert result.lines[0].startswith(f"first deploy of dev (Kubernetes {minor}")
    assert not result.blocked, result.report()
