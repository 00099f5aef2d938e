"""Bad configuration gets one clear error (file, key, value, what is allowed) before anything is synthesized."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from burrow.config.helm_values import chart_values
from burrow.config.loader import deep_merge, load_environment
from burrow.errors import ConfigError
from tests.support.services import ROOT


@pytest.fixture
def env_dir(tmp_path) -> Path:
    target = tmp_path / "environments"
    shutil.copytree(ROOT / "environments", target)
    return target


def write(env_dir: Path, name: str, text: str) -> None:
    (env_dir / f"{name}.yaml").write_text(text)


def error_for(env_dir: Path, name: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_environment(name, env_dir)
    return str(caught.value)


def test_deep_merge_merges_mappings_and_replaces_everything_else():
    base = {"a": {"x": 1, "y": [1, 2]}, "b": 1}
    assert deep_merge(base, {"a": {"y": [3]}, "c": 2}) == {"a": {"x": 1, "y": [3]}, "b": 1, "c": 2}
    assert base == {"a": {"x": 1, "y": [1, 2]}, "b": 1}


def test_every_shipped_environment_is_valid():
    for name in ("dev", "qa", "uat", "preprod", "prod"):
        assert load_environment(name, ROOT / "environments").name == name


def test_missing_environment_file_names_the_file_and_the_known_environments(env_dir):
    message = error_for(env_dir, "perf")
    assert "perf.yaml: file not found" in message
    assert "known environments: dev, preprod, prod, qa, uat" in message


@pytest.mark.parametrize("name", ["Prod", "p", "prod-eu", "../etc", "1qa"])
def test_bad_environment_names_are_refused(env_dir, name):
    assert f"environment name {name!r} is invalid" in error_for(env_dir, name)


def test_unknown_key_is_an_error_with_its_path_and_file(env_dir):
    write(env_dir, "qa", "state: {backend: s3, bucket: b-qa-tfstate}\nrabbitmq:\n  replicas: 1\n  replica_count: 3\n")
    message = error_for(env_dir, "qa")
    assert f"{env_dir / 'qa.yaml'}: rabbitmq.replica_count = 3: unknown key" in message


def test_wrong_type_names_file_key_value_and_what_is_allowed(env_dir):
    write(env_dir, "qa", "state: {backend: s3, bucket: b-qa-tfstate}\napps:\n  consumer:\n    prefetch: lots\n")
    message = error_for(env_dir, "qa")
    assert f"{env_dir / 'qa.yaml'}: apps.consumer.prefetch = 'lots': Input should be a valid integer" in message


def test_a_mistake_in_the_defaults_names_default_yaml(env_dir):
    text = (env_dir / "default.yaml").read_text().replace("vpc_cidr: 10.0.0.0/16", "vpc_cidr: 10.0.0.0/33")
    (env_dir / "default.yaml").write_text(text)
    message = error_for(env_dir, "dev")
    assert f"{env_dir / 'default.yaml'}: network.vpc_cidr = '10.0.0.0/33': not an IPv4 network" in message


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("rabbitmq: {replicas: 2}", "rabbitmq.replicas = 2: a RabbitMQ cluster needs an odd number"),
        ("apps: {producer: {image: {tag: latest}}}", "apps.producer.image.tag = 'latest': the mutable tag 'latest' is not allowed"),
        ("cluster: {eks: {node_groups: {general: {min_size: 5}}}}", "min_size (5) exceeds max_size (4)"),
        ("network: {availability_zones: 1}", "network.availability_zones = 1: Input should be greater than or equal to 2"),
        ("network: {availability_zones: 6, subnet_prefix_length: 19}", "12 subnets of /19 (public and private per zone) do not fit in 10.0.0.0/16"),
        ("kubernetes: {version: '1.9'}", "kubernetes.version = '1.9': supported versions are"),
        ("cluster: {eks: {node_groups: {general: {instance_types: [large]}}}}", "instance_types.0 = 'large'"),
        ("state: {backend: local}", "an EKS environment keeps its state in S3"),
        ("tier: prodution", "tier = 'prodution': Input should be 'development', 'staging' or 'production'"),
    ],
)
def test_configurations_that_cannot_work_fail_with_the_reason(env_dir, override, expected):
    base = "state: {backend: s3, bucket: b-qa-tfstate}\n" if "state:" not in override else ""
    write(env_dir, "qa", base + override + "\n")
    assert expected in error_for(env_dir, "qa")


def test_invalid_yaml_names_the_line(env_dir):
    write(env_dir, "qa", "tier: staging\nrabbitmq:\n  replicas: 3\n  image: {tag: x\nnetwork: {}\n")
    error = error_for(env_dir, "qa")
    assert error.startswith(f"{env_dir / 'qa.yaml'}: line 5, column 8: not valid YAML:"), error


def test_a_storage_class_that_does_not_exist_is_refused(env_dir):
    write(env_dir, "qa", (env_dir / "qa.yaml").read_text() + "monitoring: {storage_class: fast-ssd}\n")
    assert error_for(env_dir, "qa") == (
        f"{env_dir / 'qa.yaml'}: monitoring.storage_class = 'fast-ssd': no such StorageClass on this cluster; available: gp3"
    )


def test_brokers_that_cannot_all_be_scheduled_are_refused(env_dir):
    text = (env_dir / "preprod.yaml").read_text().replace("min_size: 3, desired_size: 3", "min_size: 2, desired_size: 2")
    write(env_dir, "preprod", text)
    assert error_for(env_dir, "preprod") == (
        f"{env_dir / 'preprod.yaml'}: rabbitmq.replicas = 3: 3 brokers with hard anti-affinity need 3 nodes, but the "
        "node groups guarantee 2 (sum of cluster.eks.node_groups.*.min_size); raise min_size, or set anti_affinity: soft"
    )


def test_name_may_not_be_set_in_a_file(env_dir):
    write(env_dir, "qa", "name: other\n")
    assert "name: not allowed here; it comes from the file name" in error_for(env_dir, "qa")


def test_chart_values_may_not_set_what_the_typed_config_owns(tmp_path):
    (tmp_path / "values-default.yaml").write_text("clustering: {enabled: true}\n")
    (tmp_path / "values-qa.yaml").write_text("replicaCount: 5\n")
    assert chart_values(tmp_path, "dev", ["replicaCount"]) == [{"clustering": {"enabled": True}}]
    with pytest.raises(ConfigError, match=r"values-qa.yaml: replicaCount: set by Burrow"):
        chart_values(tmp_path, "qa", ["replicaCount"])


def run_main(env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "main.py"], cwd=ROOT, env={"BURROW_ENV": env, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120
    )


def test_cli_reports_a_bad_environment_without_a_traceback_and_writes_nothing(tmp_path):
    result = run_main("nosuchenv")
    assert result.returncode == 2
    assert "burrow: configuration error:" in result.stderr
    assert "nosuchenv.yaml: file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_new_env_scaffold_synthesizes_at_once(env_dir, tmp_path):
    from cdktf import App

    from burrow.synth import build_app
    from burrow_tools.scaffold import scaffold

    path = scaffold("perf", env_dir)
    assert path.read_text().count("burrow-perf-tfstate") == 1
    with pytest.raises(ConfigError, match="already exists"):
        scaffold("perf", env_dir)
    app = App(outdir=str(tmp_path / "out"))
    build_app(app, [load_environment("perf", env_dir)], ROOT / "helm")
    app.synth()
    assert sorted(p.name for p in (tmp_path / "out" / "stacks").iterdir()) == [
        "perf-addons",
        "perf-app",
        "perf-cluster",
        "perf-common",
    ]
