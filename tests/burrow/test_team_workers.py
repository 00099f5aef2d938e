"""Another team's workers: its own names, images, ports and queues on one broker; release names
unique per namespace; a bad prop is one line naming the construct path."""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from burrow.k8s.release import terraform_unescape
from tests.burrow.test_library import readme_example, run_example
from tests.support.services import ROOT

SIZE = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}
IMAGE = {"registry": "ghcr.io", "repository": "orders/intake", "tag": "1.2.3"}


def worker_props(queue: str = "orders.intake", **extra) -> dict:
    return {
        "image": IMAGE,
        "resources": SIZE,
        "messaging": {"exchange": "orders", "queue": queue, "routing_key": queue},
        **extra,
    }


def team(tmp_path):
    """Stack `team` with its namespace and broker; returns (app, stack, namespace, broker)."""
    from cdktf import App, TerraformStack

    from burrow import AppNamespace, Guardrails, KubeconfigCluster, RabbitMqBroker, Tier

    app = App(outdir=str(tmp_path))
    stack = TerraformStack(app, "team")
    KubeconfigCluster(kubeconfig_path="k", context="c", version="1.33").configure_providers(stack)
    Guardrails.configure(stack, Tier.DEVELOPMENT)
    namespace = AppNamespace(stack, "ns", {"name": "orders"})
    broker = RabbitMqBroker(
        stack,
        "mq",
        namespace=namespace,
        props={"image": {"registry": "r", "repository": "rabbitmq", "tag": "4"}, "resources": SIZE,
               "users_by_role": False},
    )
    return app, stack, namespace, broker


def delivered(tmp_path, release: str) -> list[dict]:
    stack = json.loads((tmp_path / "stacks" / "team" / "cdk.tf.json").read_text())
    found = [r for r in stack["resource"]["helm_release"].values() if r["name"] == release]
    assert len(found) == 1, f"{len(found)} releases named {release}"
    return yaml.safe_load(terraform_unescape(found[0]["values"][0]))["objects"]


def test_a_team_stack_with_two_workers_of_its_own_on_one_broker_synthesizes_to_two_distinct_releases(tmp_path):
    """The done-when of issue 23 on a broker whose clients share one login (docs/constructs.md prints the
    same two workers as a Team's; its block asserts the releases)."""
    from burrow import QueueWorker

    app, stack, namespace, broker = team(tmp_path)
    QueueWorker(stack, "order-intake", namespace=namespace, broker=broker, props=worker_props(port=8080))
    QueueWorker(
        stack,
        "billing",
        namespace=namespace,
        broker=broker,
        props=worker_props(
            "orders.billing",
            name="order-billing",
            image={**IMAGE, "repository": "orders/billing", "tag": "0.9.0"},
            port=9000,
            liveness_path="/live",
            readiness_path="/ready",
        ),
    )
    app.synth()
    seen = {}
    for release in ("order-intake", "order-billing"):
        deployment = next(o for o in delivered(tmp_path, release) if o["kind"] == "Deployment")
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        seen[release] = (
            deployment["metadata"]["name"],
            container["image"],
            container["ports"][0]["containerPort"],
            container["readinessProbe"]["httpGet"]["path"],
            env["RABBITMQ_QUEUE"],
            env["RABBITMQ_HOST"],
        )
    host = "rabbitmq.orders.svc.cluster.local"
    assert seen == {
        "order-intake": ("order-intake", "ghcr.io/orders/intake:1.2.3", 8080, "/readyz", "orders.intake", host),
        "order-billing": ("order-billing", "ghcr.io/orders/billing:0.9.0", 9000, "/ready", "orders.billing", host),
    }


def test_a_worker_is_wired_to_nothing_of_burrows_own(tmp_path):
    from burrow import QueueWorker

    app, stack, namespace, broker = team(tmp_path)
    QueueWorker(stack, "intake", namespace=namespace, broker=broker, props=worker_props())
    app.synth()
    text = json.dumps(delivered(tmp_path, "intake"))
    for burrows in ("burrow.events", "burrow.work", "5000", '"/health"', '"/ready"', 'part-of": "burrow'):
        assert burrows not in text
    deployment = next(o for o in delivered(tmp_path, "intake") if o["kind"] == "Deployment")
    assert deployment["metadata"]["labels"]["app.kubernetes.io/part-of"] == "orders"  # the namespace's name
    assert deployment["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"


def test_each_worker_scales_and_alerts_on_its_own_queue_under_its_own_names(tmp_path):
    from burrow import QueueWorker

    app, stack, namespace, broker = team(tmp_path)
    for name, queue in (("intake", "orders.intake"), ("billing", "orders.billing")):
        QueueWorker(
            stack,
            name,
            namespace=namespace,
            broker=broker,
            props=worker_props(
                queue,
                role=name,
                command=["python", "-m", f"orders.{name}"],
                args=["--fast"],
                autoscaling={"kind": "queue", "queue_length": 20},
                alerts={},
            ),
        )
    app.synth()
    names = set()
    for name, queue in (("intake", "orders.intake"), ("billing", "orders.billing")):
        objects = delivered(tmp_path, name)
        scaled = next(o for o in objects if o["kind"] == "ScaledObject")
        assert scaled["spec"]["triggers"][0]["metadata"]["queueName"] == queue
        rules = next(o for o in objects if o["kind"] == "PrometheusRule")["spec"]["groups"][0]["rules"]
        alerts = [rule["alert"] for rule in rules]
        title = name.capitalize()
        assert alerts == [
            f"Orders{title}Restarting",
            f"Orders{title}NotReady",
            f"Orders{title}ConsumersAbsent",
            f"Orders{title}QueueBacklog",
        ]
        assert f'queue="{queue}"' in rules[2]["expr"]
        container = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]
        assert (container["command"], container["args"]) == (["python", "-m", f"orders.{name}"], ["--fast"])
        names.update(alerts)
    assert len(names) == 8  # no alert name shared by the two workers


def test_two_workers_with_one_name_in_a_namespace_are_refused_naming_both(tmp_path):
    from burrow import PropsError, QueueWorker
    from burrow.release_names import check_release_names

    app, stack, namespace, broker = team(tmp_path)
    QueueWorker(stack, "intake", namespace=namespace, broker=broker, props=worker_props(name="worker"))
    QueueWorker(
        stack, "billing", namespace=namespace, broker=broker, props=worker_props("orders.billing", name="worker")
    )
    expected = (
        "team/billing/objects/release: name='worker' is invalid: team/intake/objects/release already releases "
        "'worker' in namespace orders; release names are unique per namespace, so give one of them another name"
    )
    with pytest.raises(PropsError) as refused:
        check_release_names([stack])
    assert str(refused.value) == expected
    with pytest.raises(RuntimeError, match="Validation failed") as plain:  # a bare app.synth() refuses too
        app.synth()
    assert expected in str(plain.value)
    assert not (tmp_path / "stacks" / "team" / "cdk.tf.json").exists()


def test_any_two_releases_with_one_name_in_a_namespace_are_refused(tmp_path):
    """Not only workers: two object releases (the same holds for raw cdktf helm_releases)."""
    from burrow import KubernetesObjects

    app, stack, namespace, _ = team(tmp_path)
    KubernetesObjects(stack, "first", {"release_name": "extras", "namespace": "orders", "objects": []})
    KubernetesObjects(stack, "second", {"release_name": "extras", "namespace": "elsewhere", "objects": []})
    app.synth()  # one name in two namespaces is fine
    KubernetesObjects(stack, "third", {"release_name": "extras", "namespace": "orders", "objects": []})
    with pytest.raises(RuntimeError, match=r"team/third/release: name='extras' is invalid: team/first/release already"):
        app.synth()


def test_synthesize_prints_the_duplicate_name_as_the_page_shows(tmp_path):
    """The page's example with both workers named order-intake: exit 2 and the line printed on the page."""
    page = (ROOT / "docs" / "constructs.md").read_text()
    printed = next(
        line
        for line in page.splitlines()
        if "release names are unique per namespace" in line and line.startswith("burrow: ")
    )
    code = readme_example()
    assert '"name": "order-billing"' in code
    result = run_example(
        code.replace('"name": "order-billing"', '"name": "order-intake"'),
        tmp_path / "team",
        [str(ROOT / "constructs"), *(p for p in sys.path if "site-packages" in p)],
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [printed]
    assert not (tmp_path / "team" / "cdktf.out" / "stacks" / "orders" / "cdk.tf.json").exists()


@pytest.mark.parametrize(
    ("bad", "line"),
    [
        ({"port": 0}, "team/intake: port=0 is invalid: Input should be greater than or equal to 1"),
        (
            {"role": "Billing Team"},
            "team/intake: role='Billing Team' is invalid: String should match pattern "
            "'^[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?$'",
        ),
        (
            {"image": {**IMAGE, "tag": "latest"}},
            "team/intake: image.tag='latest' is invalid: the mutable tag 'latest' is "
            "not allowed; use a version tag or a digest",
        ),
        (
            {"messaging": None},
            "team/intake: messaging=None is invalid: Input should be a valid dictionary or instance of QueueBinding",
        ),
        ({"replica": 3}, "team/intake: replica=3 is invalid: unknown field; the fields of QueueWorkerProps are replicas, name, "),
        (
            {"drain_seconds": 40},
            "team/intake: termination_grace_seconds=30 is invalid: must exceed drain_seconds (40), "
            "or Kubernetes kills the pod mid-drain",
        ),
    ],
)
def test_a_bad_worker_prop_is_one_line_with_the_construct_path(tmp_path, bad, line):
    from burrow import PropsError, QueueWorker

    _, stack, namespace, broker = team(tmp_path)
    with pytest.raises(PropsError) as refused:
        QueueWorker(stack, "intake", namespace=namespace, broker=broker, props=worker_props(**bad))
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(line), message
    assert stack.node.try_find_child("intake") is None  # nothing half-built is left in the tree


def test_a_bad_prop_in_a_model_built_beforehand_names_the_props_class():
    from burrow import PropsError, QueueWorkerProps, RabbitMqBrokerProps

    with pytest.raises(
        PropsError, match=r"^QueueWorkerProps: messaging=\(missing\) is invalid: required, and not set$"
    ):
        QueueWorkerProps(image=IMAGE, resources=SIZE)
    with pytest.raises(PropsError, match=r"^RabbitMqBrokerProps: replicas=2 is invalid: "):
        RabbitMqBrokerProps(image=IMAGE, resources=SIZE, replicas=2)


def test_a_bad_broker_prop_is_one_line_with_the_construct_path(tmp_path):
    from burrow import PropsError, RabbitMqBroker

    _, stack, namespace, _ = team(tmp_path)
    with pytest.raises(PropsError) as refused:
        RabbitMqBroker(
            stack, "queues", namespace=namespace, props={"image": IMAGE, "resources": SIZE, "release_name": "Q"}
        )
    assert str(refused.value).startswith("team/queues: release_name='Q' is invalid: String should match pattern")


def test_a_worker_id_that_is_no_kubernetes_name_needs_a_name(tmp_path):
    from burrow import PropsError, QueueWorker

    _, stack, namespace, broker = team(tmp_path)
    with pytest.raises(PropsError, match=r"^team/Intake: id='Intake' is invalid: .* set name$"):
        QueueWorker(stack, "Intake", namespace=namespace, broker=broker, props=worker_props())
    worker = QueueWorker(stack, "Intake", namespace=namespace, broker=broker, props=worker_props(name="intake"))
    assert worker.name == "intake"


def test_a_release_renamed_through_the_escape_hatch_is_compared_by_the_name_it_synthesizes(tmp_path):
    """`add_override("name", ...)` changes what Terraform receives: the check reads the synthesized
    attributes, so an override that creates a clash is refused and one that removes a clash passes."""
    from burrow import KubernetesObjects

    app, stack, namespace, _ = team(tmp_path)
    first = KubernetesObjects(stack, "first", {"release_name": "extras", "namespace": "orders", "objects": []})
    KubernetesObjects(stack, "second", {"release_name": "more", "namespace": "orders", "objects": []})
    first.release.add_override("name", "more")
    with pytest.raises(RuntimeError, match=r"team/second/release: name='more' is invalid: team/first/release already"):
        app.synth()


def test_an_override_that_removes_a_clash_lets_the_stack_synthesize(tmp_path):
    from burrow import KubernetesObjects

    app, stack, namespace, _ = team(tmp_path)
    KubernetesObjects(stack, "first", {"release_name": "extras", "namespace": "orders", "objects": []})
    second = KubernetesObjects(stack, "second", {"release_name": "extras", "namespace": "orders", "objects": []})
    second.release.add_override("namespace", "elsewhere")
    app.synth()
    assert (tmp_path / "stacks" / "team" / "cdk.tf.json").exists()


def test_a_preset_asked_for_more_replicas_than_its_autoscaling_ceiling_scales_from_there(tmp_path):
    """`QueueWorker.producer(props={"replicas": 8})`: the preset's CPU autoscaling keeps its kind and
    its maximum rises to the replicas asked for, rather than refusing a setting the caller never set."""
    from burrow import QueueWorker
    from burrow.app.settings import PRODUCER_AUTOSCALING

    app, stack, namespace, broker = team(tmp_path)
    replicas = PRODUCER_AUTOSCALING.max_replicas + 2
    worker = QueueWorker.producer(stack, "intake", namespace=namespace, broker=broker,
                                  props={**worker_props(name="intake"), "replicas": replicas})
    assert worker.props.autoscaling.max_replicas == replicas
    [hpa] = [o for o in worker.objects if o["kind"] == "HorizontalPodAutoscaler"]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (replicas, replicas)
