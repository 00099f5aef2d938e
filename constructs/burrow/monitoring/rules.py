"""Alerts as code. Each construct that owns a workload brings the alerts about it.

Expressions only use metrics that exist: the services' own (`burrow_*`, checked against a
real scrape in the tests), RabbitMQ's Prometheus plugin (`rabbitmq_*`), kube-state-metrics
(`kube_*`), Velero's server (`velero_*`, see `burrow.addons.velero`) and Prometheus' own `up`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from burrow.k8s.objects import K8sObject, metadata
from burrow.monitoring.settings import AlertThresholds

RUNBOOK_BASE = "docs/operating.md#alerts"


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    minutes: int
    severity: str  # "critical" pages, "warning" tickets
    summary: str
    runbook: str
    #: Where the alert's runbook section lives (Burrow's own services: docs/operating.md); None: no link.
    runbook_base: str | None = RUNBOOK_BASE

    def render(self) -> dict[str, Any]:
        annotations = {"summary": self.summary, "runbook": self.runbook}
        if self.runbook_base:
            annotations["runbook_url"] = f"{self.runbook_base}-{self.name.lower()}"
        return {
            "alert": self.name,
            "expr": self.expr,
            "for": f"{self.minutes}m",
            "labels": {"severity": self.severity},
            "annotations": annotations,
        }


def selector(**labels: str) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def prometheus_rule(name: str, namespace: str, labels: Mapping[str, str], group: str, alerts: Sequence[Alert]) -> K8sObject:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata(name, namespace, labels),
        "spec": {"groups": [{"name": group, "rules": [alert.render() for alert in alerts]}]},
    }


def alert_prefix(*words: str) -> str:
    """The CamelCase start of an alert's name: `alert_prefix("burrow", "producer")` is BurrowProducer,
    `alert_prefix("orders", "order-ingest")` OrdersOrderIngest (alert names take no dashes)."""
    return "".join(part.capitalize() for word in words for part in re.split(r"[^a-zA-Z0-9]+", word))


def workload_alerts(
    name: str, namespace: str, thresholds: AlertThresholds, prefix: str, readiness_path: str, burrow: bool = True
) -> list[Alert]:
    """Alerts every workload gets: restarts, pods not ready (its readiness probe failing). Their names
    start with `prefix` (one per workload, so two workloads' alerts never share a name). `burrow`:
    Burrow's own services (their log lines, runbook links); otherwise a team's worker, in words
    that hold for any image."""
    runbook_base = RUNBOOK_BASE if burrow else None
    not_ready = (
        f"{readiness_path} fails while the broker connection is down. Check the broker (RabbitMQ alerts), then "
        f"kubectl -n {namespace} logs deploy/{name} for 'broker connection lost'."
        if burrow else
        f"The worker's {readiness_path} fails: kubectl -n {namespace} describe pod -l app.kubernetes.io/name={name}, "
        f"then its logs (kubectl -n {namespace} logs deploy/{name}); check its broker too (RabbitMQ alerts)."
    )
    deployment = selector(namespace=namespace, deployment=name)
    container = selector(namespace=namespace, container=name)
    return [
        Alert(
            f"{prefix}Restarting",
            f"sum by (pod) (increase(kube_pod_container_status_restarts_total{container}[30m])) >= {thresholds.restarts}",
            5,
            "warning",
            f"{name} pods in {namespace} restarted {thresholds.restarts}+ times in 30 minutes",
            f"kubectl -n {namespace} describe pod -l app.kubernetes.io/name={name}; read the previous container's "
            "logs (kubectl logs --previous). OOMKilled: raise the memory limit; failing liveness: the process hangs.",
            runbook_base,
        ),
        Alert(
            f"{prefix}NotReady",
            f"(kube_deployment_spec_replicas{deployment} - kube_deployment_status_replicas_available{deployment}) > 0",
            thresholds.not_ready_minutes,
            "critical",
            f"{name} in {namespace} has pods whose {readiness_path} fails",
            not_ready,
            runbook_base,
        ),
    ]


def producer_alerts(name: str, namespace: str) -> list[Alert]:
    return [
        Alert(
            "BurrowPublishConfirmsFailing",
            f"sum(rate(burrow_messages_publish_failed_total{selector(namespace=namespace)}[5m])) > 0",
            5,
            "warning",
            f"{name} in {namespace}: publishes are returned, nacked or cut off (they are retried)",
            "Returned: the exchange has no bound queue (is the consumer's topology declared?). Nacked: the "
            "broker refuses (memory or disk alarm). Cut off: connection losses, see RabbitMQ alerts.",
        ),
        Alert(
            "BurrowPublishRejected",
            f"sum by (reason) (rate(burrow_publish_rejected_total{selector(namespace=namespace)}[5m])) > 0",
            5,
            "warning",
            f"{name} in {namespace}: POST /publish answers 503 (see the reason label); clients must retry",
            "Nothing was acknowledged, so nothing is lost, but clients are being turned away. unavailable: the "
            "broker is unreachable; blocked: a memory or disk alarm, see RabbitMQ alerts; timeout: confirms "
            "are slower than PUBLISH_WAIT_SECONDS; busy: more concurrent requests than the producer can hold.",
        ),
    ]


def queue_alerts(
    name: str, namespace: str, queue: str, thresholds: AlertThresholds, prefix: str,
    max_replicas_key: str = "autoscaling.max_replicas", burrow: bool = True, on: tuple[str, str] | None = None,
) -> list[Alert]:
    """Alerts about the queue a worker consumes, from the broker's per-queue metrics: messages and no
    consumer, a backlog. `max_replicas_key` names the setting that raises the worker's ceiling;
    `burrow` as for `workload_alerts`; `on`: (the broker's namespace, the virtual host) of a queue on
    a broker of another namespace (a team's). default: the worker's namespace, any virtual host"""
    queue_labels = selector(namespace=on[0], vhost=on[1], queue=queue) if on else selector(namespace=namespace, queue=queue)
    if burrow:
        absent = (f"kubectl -n {namespace} get deploy,scaledobject {name}; the consumer may be crash-looping or "
                  "scaled to zero. Messages are safe in the quorum queue until it returns.")
        backlog = (f"Is KEDA at maxReplicaCount (raise {max_replicas_key})? Is processing slower "
                   "(dashboard: processing time)? Is the producer publishing faster than planned?")
    else:
        absent = (f"kubectl -n {namespace} get pods -l app.kubernetes.io/name={name}; the worker may be crash-looping "
                  "or scaled to zero. The messages wait in the queue until it returns.")
        backlog = (f"Is the worker at its most replicas (raise {max_replicas_key})? Is it slower than usual, or are "
                   "messages arriving faster than planned?")
    return [
        Alert(
            f"{prefix}ConsumersAbsent",
            f"sum(rabbitmq_detailed_queue_consumers{queue_labels}) == 0 "
            f"and sum(rabbitmq_detailed_queue_messages_ready{queue_labels}) > 0",
            5,
            "critical",
            f"queue {queue} in {namespace} has messages and no consumer",
            absent,
            RUNBOOK_BASE if burrow else None,
        ),
        Alert(
            f"{prefix}QueueBacklog",
            f"sum(rabbitmq_detailed_queue_messages_ready{queue_labels}) > {thresholds.queue_depth}",
            thresholds.queue_depth_minutes,
            "warning",
            f"queue {queue} in {namespace} holds more than {thresholds.queue_depth} ready messages",
            backlog,
            RUNBOOK_BASE if burrow else None,
        ),
    ]


def consumer_alerts(name: str, namespace: str, queue: str, thresholds: AlertThresholds) -> list[Alert]:
    """Burrow's consumer: its queue's alerts under the names its runbooks use, and dead letters."""
    dead_labels = selector(namespace=namespace, queue=f"{queue}.dead")
    return [
        *queue_alerts(name, namespace, queue, thresholds, "Burrow", "apps.consumer.autoscaling.max_replicas"),
        Alert(
            "BurrowDeadLetters",
            f"sum(increase(burrow_messages_dead_lettered_total{selector(namespace=namespace)}[{thresholds.dead_letter_minutes}m])) > 0 "
            f"or sum(delta(rabbitmq_detailed_queue_messages{dead_labels}[{thresholds.dead_letter_minutes}m])) > 0",
            1,
            "warning",
            f"messages are being dead-lettered into {queue}.dead in {namespace}",
            f"The consumer logs each one once ('message dead-lettered' with the reason). Inspect {queue}.dead "
            "in the management UI; fix the producer, then shovel the messages back or drop them.",
        ),
    ]


def broker_alerts(release: str, namespace: str, replicas: int) -> list[Alert]:
    broker = selector(namespace=namespace)
    alerts = [
        Alert(
            "RabbitMQNodeDown",
            f"up{selector(namespace=namespace, service=release)} == 0",
            2,
            "critical",
            f"a RabbitMQ node of {release} in {namespace} is not answering",
            f"kubectl -n {namespace} get pods -l app.kubernetes.io/instance={release}; quorum queues keep "
            "serving while a majority of nodes is up.",
        ),
        Alert(
            "RabbitMQMemoryAlarm",
            f"max(rabbitmq_alarms_memory_used_watermark{broker}) > 0",
            1,
            "critical",
            f"RabbitMQ in {namespace} hit its memory high watermark and blocks publishers",
            "Consumers are behind or gone (see BurrowQueueBacklog); raise rabbitmq.resources.limits.memory "
            "or drain the backlog.",
        ),
        Alert(
            "RabbitMQDiskAlarm",
            f"max(rabbitmq_alarms_free_disk_space_watermark{broker}) > 0",
            1,
            "critical",
            f"RabbitMQ in {namespace} is low on disk and blocks publishers",
            "Grow the volume (rabbitmq.persistence.size) or drain queues.",
        ),
    ]
    if replicas > 1:
        alerts.append(
            Alert(
                "RabbitMQPartitioned",
                f"count(rabbitmq_identity_info{broker}) < {replicas}",
                5,
                "critical",
                f"fewer than {replicas} RabbitMQ nodes of {release} are running (partition or node loss)",
                "With pause_minority the minority side stops itself. Check node connectivity and the "
                "nodes' logs; the paused side rejoins when the partition heals.",
            )
        )
    return alerts
