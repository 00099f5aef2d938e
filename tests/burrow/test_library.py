"""Another team imports Burrow's constructs into its own TerraformStack, as the README shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest
import yaml

from burrow.k8s.release import terraform_unescape
from tests.support.services import ROOT


def readme_example() -> str:
    """docs/constructs.md's "Using Burrow's constructs in your own stack" example, as printed."""
    section = (ROOT / "docs" / "constructs.md").read_text().split("## Using Burrow's constructs in your own stack", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def run_example(code: str, work, pythonpath: list[str]) -> subprocess.CompletedProcess:
    work.mkdir(exist_ok=True)
    (work / "orders_stack.py").write_text(code)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(pythonpath)}
    return subprocess.run([sys.executable, "orders_stack.py"], cwd=work, env=env, capture_output=True, text=True, timeout=300)


def check_orders_stack(outdir) -> None:
    """The example's team and its two workers: two releases in the team's namespace, each with the
    team's image, port, probes and queue, logged in as the team on its virtual host."""
    stack = json.loads((outdir / "stacks" / "orders" / "cdk.tf.json").read_text())
    releases = {r["name"]: r for r in stack["resource"]["helm_release"].values()}
    # messaging-rabbitmq-scaler: the ClusterTriggerAuthentication of the scaler Secret in KEDA's namespace
    assert set(releases) == {"orders-mq", "orders-mq-objects", "messaging-network-defaults", "messaging-rabbitmq-scaler",
                             "orders-network-defaults", "orders-team-access", "order-intake", "order-billing"}
    expected = {"order-intake": ("ghcr.io/orders/intake:1.2.3", 8080, "/healthz", "orders.intake"),
                "order-billing": ("ghcr.io/orders/billing:0.9.0", 9000, "/live", "orders.billing")}
    for name, (image, port, liveness, queue) in expected.items():
        objects = yaml.safe_load(terraform_unescape(releases[name]["values"][0]))["objects"]
        deployment = next(o for o in objects if o["kind"] == "Deployment")
        assert deployment["metadata"]["name"] == name
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert (container["image"], container["ports"][0]["containerPort"], container["livenessProbe"]["httpGet"]["path"],
                env["RABBITMQ_QUEUE"]["value"]) == (image, port, liveness, queue)
        assert deployment["metadata"]["namespace"] == "orders"
        assert env["RABBITMQ_HOST"]["value"] == "orders-mq.messaging.svc.cluster.local"
        assert env["RABBITMQ_VHOST"]["value"] == "orders"
        assert env["RABBITMQ_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "orders-mq-login"
        assert (outdir / "stacks" / "orders" / releases[name]["chart"] / "templates" / "objects.yaml").is_file()


def installed_burrow(tmp_path) -> list[str]:
    """`pip install .` into a folder; the path list a team's interpreter sees (never the checkout)."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(target), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return [str(target), *(p for p in sys.path if "site-packages" in p)]


def test_the_readme_example_runs_from_the_installed_package_outside_the_repository(tmp_path):
    """`pip install .` gives another team `import burrow`, object chart included."""
    work = tmp_path / "team"
    result = run_example(readme_example(), work, installed_burrow(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    check_orders_stack(work / "cdktf.out")


def test_a_refused_team_stack_prints_burrows_report_not_a_stack_trace(tmp_path):
    """The README's example without its tier line is held to production rules and refused."""
    code = readme_example()
    assert "Guardrails.configure(self, Tier.DEVELOPMENT)" in code
    result = run_example(code.replace("Guardrails.configure(self, Tier.DEVELOPMENT)", "pass"), tmp_path / "team",
                         [str(ROOT / "constructs"), *(p for p in sys.path if "site-packages" in p)])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "burrow: synth refused by guardrails:"
    assert "  orders: orders/mq: [rabbitmq-replicas] run 3 RabbitMQ replicas (replicaCount is 1)" in lines
    # In the props the team wrote, as docs/constructs.md quotes it; never an environment file's keys.
    quoted = (ROOT / "docs" / "constructs.md").read_text().split("burrow: synth refused by guardrails:\n", 1)[1]
    assert "  orders: orders/mq: [rabbitmq-anti-affinity] set anti_affinity: hard (podAntiAffinityPreset is soft)" in lines
    assert lines[-1] == quoted.split("```", 1)[0].splitlines()[-1]
    assert lines[-1].startswith("Fix the props named above")
    assert "JavaScriptError" not in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "team" / "cdktf.out" / "stacks" / "orders" / "cdk.tf.json").exists()


def test_bad_props_fail_in_the_constructor_with_the_construct_path():
    from cdktf import App, TerraformStack

    from burrow import (
        AppNamespace,
        Image,
        KubeconfigCluster,
        PropsError,
        RabbitMqBroker,
        RabbitMqBrokerProps,
        Resources,
    )

    stack = TerraformStack(App(), "team")
    KubeconfigCluster(kubeconfig_path="k", context="c", version="1.33").configure_providers(stack)
    ns = AppNamespace(stack, "ns", {"name": "team"})
    size = Resources.model_validate({"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}})
    props = RabbitMqBrokerProps(
        image=Image(registry="r", repository="rabbitmq", tag="4"), resources=size, values=[{"replicaCount": 5}]
    )
    with pytest.raises(PropsError, match=r"team/mq: values\[0\]=\['replicaCount'\] is invalid"):
        RabbitMqBroker(stack, "mq", namespace=ns, props=props)


def test_worker_props_refuse_a_grace_period_shorter_than_the_drain():
    from burrow import PropsError, QueueWorkerProps

    with pytest.raises(PropsError, match="termination_grace_seconds=30 is invalid: must exceed drain_seconds"):
        QueueWorkerProps.model_validate(
            {
                "role": "producer",
                "image": {"registry": "r", "repository": "p", "tag": "1"},
                "messaging": {"exchange": "e", "queue": "q", "routing_key": "k"},
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
                "drain_seconds": 30,
                "termination_grace_seconds": 30,
            }
        )


def test_the_wheel_holds_the_whole_library_and_none_of_the_tooling(tmp_path):
    """What `pip install` ships: every module of constructs/burrow and the object chart; no tooling."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    [wheel] = tmp_path.glob("burrow-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    library = {f"burrow/{p.relative_to(ROOT / 'constructs' / 'burrow')}" for p in (ROOT / "constructs" / "burrow").rglob("*.py")}
    assert "burrow/k8s/objects.py" in library and "burrow/policy/facts.py" in library
    assert library - names == set(), "modules missing from the wheel: add their package to pyproject.toml"
    assert {"burrow/_chart/Chart.yaml", "burrow/_chart/templates/objects.yaml"} <= names
    shipped_packages = {name.split("/")[0] for name in names if not name.startswith("burrow-")}
    assert shipped_packages == {"burrow"}
    assert not [name for name in names if "/terraform/" in name or "/delivery/" in name or "burrow_tools" in name]


def test_the_library_has_no_import_cycle_between_policy_and_constructs():
    """Policy reads facts (burrow.policy.facts); it never imports the constructs it polices."""
    import ast

    policy = ROOT / "constructs" / "burrow" / "policy"
    imported = {
        node.module
        for path in policy.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported, "the policy package imports nothing?"
    assert not [m for m in imported if m.startswith(("burrow.app", "burrow.stacks", "burrow.addons", "burrow.cluster"))]


def test_escape_hatch_edits_before_synth_are_delivered(tmp_path):
    from burrow import Tier
    from tests.support.team import team_stack

    app, worker = team_stack(tmp_path, Tier.DEVELOPMENT)
    worker.deployment["metadata"]["annotations"] = {"team.example/owner": "orders"}
    worker.objects = (*worker.objects, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "extra", "namespace": "team"}, "data": {"a": "b"}})
    app.synth()
    stack_json = json.loads((tmp_path / "stacks" / "team" / "cdk.tf.json").read_text())
    [release] = [r for r in stack_json["resource"]["helm_release"].values() if r["name"] == "consumer"]
    delivered = yaml.safe_load(terraform_unescape(release["values"][0]))["objects"]
    assert delivered[-1]["metadata"]["name"] == "extra"
    assert next(o for o in delivered if o["kind"] == "Deployment")["metadata"]["annotations"] == {"team.example/owner": "orders"}


def test_every_public_name_resolves_to_its_module():
    """`import burrow` is lazy: each name in `__all__` loads its module on first use and must exist there."""
    import burrow

    for name in burrow.__all__:
        value = getattr(burrow, name)
        assert getattr(value, "__name__", name) == name, name


def _burrow_types(hint, found: set, skip: tuple) -> None:
    """Every class of the `burrow` package in a type hint, and in the fields of those it names."""
    import dataclasses
    import typing

    from pydantic import BaseModel

    if not isinstance(hint, type):
        for arg in typing.get_args(hint):
            _burrow_types(arg, found, skip)
        return
    if not hint.__module__.startswith("burrow") or hint in found:
        return
    found.add(hint)
    if issubclass(hint, skip):
        return
    if issubclass(hint, BaseModel):
        fields = [f.annotation for f in hint.model_fields.values()]
    elif dataclasses.is_dataclass(hint):
        fields = list(typing.get_type_hints(hint).values())
    else:
        fields = []
    for field in fields:
        _burrow_types(field, found, skip)


def test_every_type_in_public_props_is_exported():
    """A type a team must build to fill a public construct's props (or a public model's fields) can be
    imported from `burrow`. (The layers bound to an environment, which take a whole `EnvironmentConfig`,
    are the application's: `import burrow` does not export them.)"""
    import typing

    import burrow
    from constructs import Construct

    skip = ()
    found: set = set()
    for name in burrow.__all__:
        value = getattr(burrow, name)
        if isinstance(value, type) and issubclass(value, Construct):
            for param, hint in typing.get_type_hints(value.__init__).items():
                if param != "return":
                    _burrow_types(hint, found, skip)
        elif isinstance(value, type):
            _burrow_types(value, found, skip)
    assert len(found) > 30, "the walk found almost nothing"
    assert sorted(f"{t.__module__}.{t.__name__}" for t in found if t.__name__ not in burrow.__all__) == []
