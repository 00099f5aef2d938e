"""Every alert and dashboard expression parses as PromQL and names only metrics that exist:
the services' (scraped from the real processes), RabbitMQ's (scraped from the real broker's
Prometheus plugin), kube-state-metrics', Velero's and Prometheus' own `up`."""

from __future__ import annotations

import promql_parser
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from burrow.monitoring.objects import expressions
from tests.apps.conftest import open_channel
from tests.conftest import ENVIRONMENTS
from tests.support.services import wait_until

# kube-state-metrics names the rules use (stable metrics of kube-state-metrics v2; its docs list them).
KUBE_STATE_METRICS = {
    "kube_pod_container_status_restarts_total",
    "kube_deployment_spec_replicas",
    "kube_deployment_status_replicas_available",
    "kube_horizontalpodautoscaler_status_desired_replicas",
}
# Velero's server metrics (pkg/metrics/metrics.go of Velero 1.17, labelled by `schedule`; its docs list them).
VELERO_METRICS = {
    "velero_backup_failure_total",
    "velero_backup_partial_failure_total",
    "velero_backup_last_successful_timestamp",
}
PROMETHEUS_OWN = {"up"}
DETAILED_FAMILIES = "&family=queue_coarse_metrics&family=queue_consumer_count"


def sample_names(text: str) -> set[str]:
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (its vector selectors)."""
    names: set[str] = set()

    def walk(node) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            names.add(node.name)
        for attr in ("lhs", "rhs", "expr", "args", "param", "vector_selector"):
            child = getattr(node, attr, None)
            for item in child if isinstance(child, list) else [child]:
                if item is not None and type(item).__module__ == "promql_parser":
                    walk(item)

    walk(promql_parser.parse(expr))
    return names


@pytest.fixture
def app_metric_names(start) -> set[str]:
    names: set[str] = set()
    for role in ("producer", "consumer"):
        service = start(role, PUBLISH_RATE="0")
        service.wait_ready()
        names |= sample_names(service.get("/metrics").text)
    return names


@pytest.fixture
def rabbitmq_metric_names(broker, topology) -> set[str]:
    """RabbitMQ's metric names, with a queue of this test's own in the session's vhost: per-queue
    metrics exist only while a queue does, so the test makes one rather than rely on leftovers."""
    probe = f"{topology['RABBITMQ_QUEUE']}.probe"
    with open_channel(broker) as channel:
        channel.queue_declare(probe, durable=True, arguments={"x-queue-type": "quorum"})
    names: set[str] = set()

    def scrape() -> bool:
        for url in (broker.metrics_url + "/metrics", broker.detailed_metrics_url + DETAILED_FAMILIES):
            response = requests.get(url, timeout=10)
            assert response.status_code == 200, f"RabbitMQ's Prometheus plugin is not reachable at {broker.metrics_url}"
            names.update(sample_names(response.text))
        return any(name.startswith("rabbitmq_detailed_queue_") for name in names)

    try:
        # The broker emits queue statistics every few seconds (collect_statistics_interval).
        wait_until(scrape, 30, "per-queue metrics of the probe queue", interval=1)
    finally:
        with open_channel(broker) as channel:
            channel.queue_delete(probe)
    return names


@pytest.fixture(scope="module")
def all_expressions(synthesized) -> list[str]:
    found = [e for env in ENVIRONMENTS for e in expressions(synthesized.objects(env))]
    assert len(found) > 20
    return found


def test_every_expression_parses_as_promql(all_expressions):
    for expr in all_expressions:
        promql_parser.parse(expr)


def test_invalid_promql_is_refused():
    with pytest.raises(Exception):  # noqa: B017,PT011 - the parser's own error type
        promql_parser.parse("sum(rate(x[5m])")


def test_the_metric_walker_finds_every_selector():
    assert metric_names("histogram_quantile(0.9, sum by (le) (rate(a_bucket[5m]))) > b and on() -c") == {"a_bucket", "b", "c"}


def test_expressions_name_only_metrics_that_exist(all_expressions, app_metric_names, rabbitmq_metric_names):
    known = app_metric_names | rabbitmq_metric_names | KUBE_STATE_METRICS | VELERO_METRICS | PROMETHEUS_OWN
    assert {"burrow_messages_dead_lettered_total", "burrow_message_processing_seconds_bucket"} <= app_metric_names
    assert {"rabbitmq_detailed_queue_messages_ready", "rabbitmq_alarms_memory_used_watermark"} <= rabbitmq_metric_names
    used = set().union(*(metric_names(e) for e in all_expressions))
    assert used - known == set()
    assert used & app_metric_names and used & rabbitmq_metric_names and used & KUBE_STATE_METRICS
    assert used >= VELERO_METRICS
