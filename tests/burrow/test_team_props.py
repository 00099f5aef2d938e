"""What a team gets wrong in its props is one line, and nothing of Burrow's is filled in for it:
a worker names its own exchange, queue and routing key; a mapping says which autoscaler it means;
an autoscaler's maximum is not below its minimum; a waiver is checked like any props; a bad prop in
a team's own script ends it with Burrow's line, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from burrow.errors import PropsError
from tests.burrow.test_team_workers import team, worker_props
from tests.support.services import ROOT


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"messaging": {}}, "team/intake: messaging.exchange=(missing) is invalid: required, and not set (and 2 more problems)"),
        ({"autoscaling": {"max_replicas": 5}}, "team/intake: autoscaling={'max_replicas': 5} is invalid: set kind: cpu "
                                                "(a HorizontalPodAutoscaler on CPU) or kind: queue (KEDA on the worker's "
                                                "queue), not None"),
        ({"autoscaling": {"kind": "queue", "queue_length": 0}}, "team/intake: autoscaling={'kind': 'queue', "
                                                                "'queue_length': 0} is invalid: queue_length=0: Input "
                                                                "should be greater than or equal to 1"),
        ({"replicas": 4, "autoscaling": {"kind": "cpu", "max_replicas": 2}},
         "team/intake: props=(the props together) is invalid: autoscaling.max_replicas (2) is below replicas (4), the "
         "minimum"),
    ],
)
def test_a_team_worker_gets_nothing_of_burrows_and_no_impossible_scaling(tmp_path, extra, expected):
    from burrow import QueueWorker

    _app, stack, namespace, broker = team(tmp_path)
    props = {**worker_props(), **extra}
    with pytest.raises(PropsError) as refused:
        QueueWorker(stack, "intake", namespace=namespace, broker=broker, props=props)
    assert str(refused.value) == expected
    assert stack.node.try_find_child("intake") is None


def test_a_mapping_names_its_autoscaler(tmp_path):
    from burrow import QueueWorker

    _app, stack, namespace, broker = team(tmp_path)
    cpu = QueueWorker(stack, "intake", namespace=namespace, broker=broker,
                      props=worker_props(autoscaling={"kind": "cpu", "max_replicas": 5}))
    queue = QueueWorker(stack, "billing", namespace=namespace, broker=broker,
                        props=worker_props("orders.billing", autoscaling={"kind": "queue", "max_replicas": 5}))
    assert [o["kind"] for o in cpu.objects if o["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")] == \
        ["HorizontalPodAutoscaler"]
    assert [o["kind"] for o in queue.objects if o["kind"] in ("HorizontalPodAutoscaler", "ScaledObject")] == \
        ["ScaledObject"]


def test_a_waiver_is_checked_like_props_and_may_be_a_mapping(tmp_path):
    from burrow import Guardrails, Tier, Waiver

    with pytest.raises(PropsError) as refused:
        Waiver(rule="image-tag", path="team/intake", reason="short")
    assert str(refused.value) == "Waiver: reason='short' is invalid: String should have at least 20 characters"
    _app, stack, _namespace, _broker = team(tmp_path)
    with pytest.raises(PropsError) as refused:
        Guardrails.configure(stack, Tier.STAGING, [{"rule": "image-tag", "path": "team/mq"}])
    assert str(refused.value) == "team: waivers[0]: reason=(missing) is invalid: required, and not set"
    guardrails = Guardrails.configure(
        stack, Tier.STAGING, [{"rule": "image-tag", "path": "team/mq", "reason": "the broker image is mirrored daily"}])
    assert guardrails.waivers == (Waiver(rule="image-tag", path="team/mq", reason="the broker image is mirrored daily"),)


def test_a_bad_prop_in_a_teams_own_script_is_one_line_and_status_2(tmp_path):
    script = tmp_path / "main.py"
    script.write_text(
        "import burrow\n"
        "from cdktf import App, TerraformStack\n"
        f"app = App(outdir={str(tmp_path / 'out')!r})\n"
        "burrow.AppNamespace(TerraformStack(app, 'team'), 'ns', {'name': 'Bad_NS'})\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "constructs"), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "burrow: team/ns: name='Bad_NS' is invalid: String should match pattern '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'"
    ]
    # anything that is not a user's mistake keeps its traceback
    script.write_text("import burrow\nraise RuntimeError('a bug')\n")
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 1 and "Traceback" in result.stderr and "RuntimeError: a bug" in result.stderr


def test_a_team_workers_alerts_speak_of_its_own_worker_and_link_no_burrow_runbook(tmp_path):
    from burrow import QueueWorker

    _app, stack, namespace, broker = team(tmp_path)
    worker = QueueWorker(stack, "intake", namespace=namespace, broker=broker, props=worker_props(alerts={}))
    [rule] = [o for o in worker.objects if o["kind"] == "PrometheusRule"]
    annotations = [r["annotations"] for r in rule["spec"]["groups"][0]["rules"]]
    assert [sorted(a) for a in annotations] == [["runbook", "summary"]] * 4  # no link into Burrow's docs
    text = " ".join(a["runbook"] + a["summary"] for a in annotations)
    for burrows in ("broker connection lost", "quorum queue", "producer", "dashboard", "scaledobject"):
        assert burrows not in text
    assert "app.kubernetes.io/name=intake" in text and "orders.intake" in text


def test_queue_autoscaling_needs_a_broker_that_gives_keda_a_login(tmp_path):
    from burrow import QueueWorker, RabbitMqBroker

    _app, stack, namespace, _broker = team(tmp_path)
    quiet = RabbitMqBroker(stack, "quiet", namespace=namespace, props={
        "image": {"registry": "r", "repository": "rabbitmq", "tag": "4"}, "release_name": "quiet",
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        "users_by_role": False, "keda_namespace": None})
    with pytest.raises(PropsError) as refused:
        QueueWorker(stack, "intake", namespace=namespace, broker=quiet,
                    props=worker_props(autoscaling={"kind": "queue"}))
    assert str(refused.value) == ("team/intake: autoscaling='kind: queue' is invalid: the broker has no keda_namespace, "
                                  "so KEDA has no login to read the queue with: set the broker's keda_namespace, or "
                                  "scale with kind: cpu")
    QueueWorker(stack, "billing", namespace=namespace, broker=quiet,
                props=worker_props("orders.billing", autoscaling={"kind": "cpu"}))


def test_the_exported_configuration_types_are_one_line_too():
    from burrow import AlertThresholds, MessagingConfig

    with pytest.raises(PropsError) as refused:
        MessagingConfig(queue="")
    assert str(refused.value) == "MessagingConfig: queue='' is invalid: String should have at least 1 character"
    with pytest.raises(PropsError) as refused:
        AlertThresholds(restarts=0)
    assert str(refused.value).startswith("AlertThresholds: restarts=0 is invalid: Input should be greater than")
