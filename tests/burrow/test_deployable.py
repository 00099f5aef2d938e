"""What would stop a real deploy, checked on the synthesized stacks: volumes name StorageClasses
that exist, every namespace has one owner and is created before what goes into it, add-ons
install in the order they need, brokers fit on the guaranteed nodes, and Loki's logs are visible."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml

from burrow.config.checks import guaranteed_nodes
from burrow.config.loader import load_environment
from burrow.k8s.release import terraform_unescape
from tests.conftest import ENVIRONMENTS
from tests.support.services import ROOT

CLOUD = ("qa", "uat", "preprod", "prod")


def releases(stack: dict) -> dict[str, dict]:
    return stack["resource"].get("helm_release", {})


def values_of(release: dict) -> list[dict]:
    return [yaml.safe_load(terraform_unescape(doc)) or {} for doc in release.get("values") or []]


def storage_classes_created(synthesized, env: str) -> set[str]:
    return {
        obj["metadata"]["name"]
        for release in releases(synthesized.stack(f"{env}-addons")).values()
        for doc in values_of(release)
        for obj in doc.get("objects", [])
        if obj.get("kind") == "StorageClass"
    }


def storage_classes_named(synthesized, env: str) -> set[str]:
    named = set()

    def walk(node) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("storageClass", "storageClassName") and isinstance(value, str):
                    named.add(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for layer in ("addons", "app"):
        for release in releases(synthesized.stacks.get(f"{env}-{layer}", {"resource": {}})).values():
            walk(values_of(release))
    walk(synthesized.rabbitmq_values(env))  # also where GitOps, not a stack, delivers the broker
    return named


@pytest.mark.parametrize("env", CLOUD)
def test_every_storage_class_a_volume_names_is_created(synthesized, env):
    created = storage_classes_created(synthesized, env)
    assert created == {"gp3"}
    assert storage_classes_named(synthesized, env) <= created


def test_preprod_and_prod_volumes_use_gp3(synthesized):
    assert storage_classes_named(synthesized, "prod") == {"gp3"}
    assert "gp3" in storage_classes_named(synthesized, "preprod")


def test_gp3_is_encrypted_ebs_waiting_for_its_pod_and_expandable(synthesized):
    [storage_class] = [
        obj
        for release in releases(synthesized.stack("prod-addons")).values()
        for doc in values_of(release)
        for obj in doc.get("objects", [])
        if obj.get("kind") == "StorageClass"
    ]
    assert storage_class["provisioner"] == "ebs.csi.aws.com"
    assert storage_class["parameters"] == {"type": "gp3", "encrypted": "true", "fsType": "ext4"}
    assert storage_class["volumeBindingMode"] == "WaitForFirstConsumer"
    assert storage_class["allowVolumeExpansion"] is True


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_namespace_has_exactly_one_owner_and_comes_first(synthesized, env):
    for layer in ("addons", "app"):
        if f"{env}-{layer}" not in synthesized.stacks:
            continue  # a GitOps app layer: its namespace is one file of the tree (test_gitops)
        stack = synthesized.stack(f"{env}-{layer}")
        namespaces = {
            key: ns["metadata"]["name"] for key, ns in stack["resource"].get("kubernetes_namespace_v1", {}).items()
        }
        owners = Counter(namespaces.values())
        owners.update(r["namespace"] for r in releases(stack).values() if r.get("create_namespace"))
        assert [name for name, count in owners.items() if count > 1] == []
        ordered = 0
        for name, release in releases(stack).items():
            owner = next((key for key, ns in namespaces.items() if ns == release["namespace"]), None)
            if owner is not None:
                assert f"kubernetes_namespace_v1.{owner}" in release.get("depends_on", []), (layer, name)
                ordered += 1
        # the check above ran: every namespace this stack makes holds at least one of its releases
        assert namespaces and ordered >= len(namespaces), (layer, sorted(namespaces.values()), ordered)


def test_alloy_installs_after_loki_and_volumes_after_their_storage_class(synthesized):
    stack = releases(synthesized.stack("prod-addons"))
    by_name = {release["name"]: key for key, release in stack.items()}
    assert f"helm_release.{by_name['loki']}" in stack[by_name["alloy"]]["depends_on"]
    for chart in ("loki", "kube-prometheus-stack"):
        assert f"helm_release.{by_name['burrow-storage-classes']}" in stack[by_name[chart]]["depends_on"]


def test_grafana_has_a_loki_data_source_where_loki_runs(synthesized):
    def grafana(env: str) -> dict:
        stack = releases(synthesized.stack(f"{env}-addons"))
        [release] = [r for r in stack.values() if r["name"] == "kube-prometheus-stack"]
        return values_of(release)[0]["grafana"]

    [loki] = grafana("prod")["additionalDataSources"]
    assert loki["type"] == "loki"
    assert loki["url"] == "http://loki.monitoring.svc.cluster.local:3100"
    assert grafana("qa")["additionalDataSources"] == []


@pytest.mark.parametrize("env", ["preprod", "prod"])
def test_hard_anti_affinity_brokers_fit_on_the_guaranteed_nodes(env):
    config = load_environment(env, ROOT / "environments")
    assert config.rabbitmq.anti_affinity == "hard"
    assert config.rabbitmq.replicas <= guaranteed_nodes(config)
