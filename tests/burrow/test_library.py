"""Another team imports Burrow's constructs into its own TerraformStack, as the README shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import yaml

from tests.support.services import ROOT

TEAM_STACK = textwrap.dedent(
    """
    import json, sys
    from cdktf import App, TerraformStack
    import burrow
    from burrow import (AppNamespace, Guardrails, Image, KubeconfigCluster, QueueWorker, QueueWorkerProps,
                        RabbitMqBroker, RabbitMqBrokerProps, Resources, Tier)

    class OrdersStack(TerraformStack):
        def __init__(self, scope, id):
            super().__init__(scope, id)
            KubeconfigCluster(kubeconfig_path="~/.kube/config", context="kind-orders",
                              version="1.33").configure_providers(self)
            Guardrails.configure(self, Tier.DEVELOPMENT)  # a sandbox: one broker, no persistence
            ns = AppNamespace(self, "ns", name="orders")
            size = Resources.model_validate({"requests": {"cpu": "100m", "memory": "128Mi"},
                                             "limits": {"cpu": "500m", "memory": "256Mi"}})
            broker = RabbitMqBroker(self, "mq", namespace=ns, props=RabbitMqBrokerProps(
                image=Image(registry="mirror.example", repository="rabbitmq", tag="4.1.3"),
                resources=size, release_name="orders-mq"))
            self.worker = QueueWorker(self, "worker", namespace=ns, broker=broker, props=QueueWorkerProps(
                role="consumer", image=Image(registry="ghcr.io", repository="orders/worker", tag="1.2.3"),
                resources=size))

    app = App(outdir=sys.argv[1])
    stack = OrdersStack(app, "orders")
    app.synth()
    print(json.dumps({"burrow": burrow.__file__, "objects": list(stack.worker.objects)}))
    """
)


def check_team_output(outdir, printed: str) -> dict:
    result = json.loads(printed.strip().splitlines()[-1])
    stack = json.loads((outdir / "stacks" / "orders" / "cdk.tf.json").read_text())
    releases = {r["name"]: r for r in stack["resource"]["helm_release"].values()}
    assert set(releases) == {"orders-mq", "orders-mq-objects", "orders-network-defaults", "consumer"}
    env = {e["name"]: e for e in result["objects"][1]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["RABBITMQ_HOST"]["value"] == "orders-mq.orders.svc.cluster.local"
    assert env["RABBITMQ_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "orders-mq-auth"
    chart = releases["consumer"]["chart"]
    assert (outdir / "stacks" / "orders" / chart / "templates" / "objects.yaml").is_file()
    return result


def test_a_team_stack_uses_burrow_constructs_in_process(tmp_path):
    namespace: dict = {}
    script = TEAM_STACK.replace("app = App(outdir=sys.argv[1])", f"app = App(outdir={str(tmp_path)!r})")
    from contextlib import redirect_stdout
    from io import StringIO

    out = StringIO()
    with redirect_stdout(out):
        exec(compile(script, "team_stack.py", "exec"), namespace)
    check_team_output(tmp_path, out.getvalue())


def test_the_installed_package_works_outside_the_repository(tmp_path):
    """`pip install .` gives another team `import burrow`, object chart included."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(target), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    work = tmp_path / "team"
    work.mkdir()
    (work / "team_stack.py").write_text(TEAM_STACK)
    # The team's interpreter sees the installed burrow and the dependencies, never the checkout.
    deps = [p for p in sys.path if "site-packages" in p]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), *deps])}
    result = subprocess.run(
        [sys.executable, "team_stack.py", str(work / "out")], cwd=work, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    printed = check_team_output(work / "out", result.stdout)
    assert printed["burrow"].startswith(str(target))


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
    ns = AppNamespace(stack, "ns", name="team")
    size = Resources.model_validate({"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}})
    props = RabbitMqBrokerProps(
        image=Image(registry="r", repository="rabbitmq", tag="4"), resources=size, values=[{"replicaCount": 5}]
    )
    with pytest.raises(PropsError, match=r"team/mq: values\[0\]=\['replicaCount'\] is invalid"):
        RabbitMqBroker(stack, "mq", namespace=ns, props=props)


def test_worker_props_refuse_a_grace_period_shorter_than_the_drain():
    from pydantic import ValidationError

    from burrow import QueueWorkerProps

    with pytest.raises(ValidationError, match="must exceed drain_seconds"):
        QueueWorkerProps.model_validate(
            {
                "role": "producer",
                "image": {"registry": "r", "repository": "p", "tag": "1"},
                "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
                "drain_seconds": 30,
                "termination_grace_seconds": 30,
            }
        )


def test_pyproject_packages_every_burrow_subpackage():
    import tomllib

    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        "burrow" + ".".join(["", *p.parent.relative_to(ROOT / "constructs" / "burrow").parts]).rstrip(".")
        for p in (ROOT / "constructs" / "burrow").rglob("__init__.py")
    }
    assert on_disk <= declared, f"add to pyproject.toml: {sorted(on_disk - declared)}"


def test_escape_hatch_edits_before_synth_are_delivered(tmp_path):
    from burrow import Tier
    from tests.support.team import team_stack

    app, worker = team_stack(tmp_path, Tier.DEVELOPMENT)
    worker.deployment["metadata"]["annotations"] = {"team.example/owner": "orders"}
    worker.objects = (*worker.objects, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "extra", "namespace": "team"}, "data": {"a": "b"}})
    app.synth()
    stack_json = json.loads((tmp_path / "stacks" / "team" / "cdk.tf.json").read_text())
    [release] = [r for r in stack_json["resource"]["helm_release"].values() if r["name"] == "consumer"]
    delivered = yaml.safe_load(release["values"][0])["objects"]
    assert delivered[-1]["metadata"]["name"] == "extra"
    assert next(o for o in delivered if o["kind"] == "Deployment")["metadata"]["annotations"] == {"team.example/owner": "orders"}
