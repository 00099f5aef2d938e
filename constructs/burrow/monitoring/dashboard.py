"""The stack's Grafana dashboard, generated from code (no pasted JSON).

Rows: messages in and out, queue depth, processing time percentiles, consumer replicas
against KEDA's target, broker health, dead letters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from burrow.monitoring.rules import selector

PANEL_WIDTH, PANEL_HEIGHT, PER_ROW = 12, 8, 2


@dataclass(frozen=True)
class Panel:
    title: str
    targets: tuple[tuple[str, str], ...]  # (legend, PromQL)
    unit: str = "short"
    kind: str = "timeseries"

    def render(self, index: int) -> dict[str, Any]:
        return {
            "id": index + 1,
            "type": self.kind,
            "title": self.title,
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "gridPos": {
                "x": (index % PER_ROW) * PANEL_WIDTH,
                "y": (index // PER_ROW) * PANEL_HEIGHT,
                "w": PANEL_WIDTH,
                "h": PANEL_HEIGHT,
            },
            "fieldConfig": {"defaults": {"unit": self.unit}, "overrides": []},
            "targets": [
                {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend}
                for i, (legend, expr) in enumerate(self.targets)
            ],
        }


def panels(namespace: str, queue: str, consumer: str, broker_release: str) -> list[Panel]:
    ns = selector(namespace=namespace)
    work = selector(namespace=namespace, queue=queue)
    dead = selector(namespace=namespace, queue=f"{queue}.dead")
    deployment = selector(namespace=namespace, deployment=consumer)
    keda_hpa = selector(namespace=namespace, horizontalpodautoscaler=f"keda-hpa-{consumer}")

    def quantile(q: float) -> str:
        return f"histogram_quantile({q}, sum by (le) (rate(burrow_message_processing_seconds_bucket{ns}[5m])))"

    return [
        Panel(
            "Messages in and out",
            (
                ("published (confirmed)", f"sum(rate(burrow_messages_confirmed_total{ns}[5m]))"),
                ("consumed (acked)", f"sum(rate(burrow_messages_acked_total{ns}[5m]))"),
                ("publish failures", f"sum(rate(burrow_messages_publish_failed_total{ns}[5m]))"),
                ("publish requests refused (503)", f"sum(rate(burrow_publish_rejected_total{ns}[5m]))"),
            ),
            unit="ops",
        ),
        Panel(
            "Queue depth",
            (
                ("ready", f"sum(rabbitmq_detailed_queue_messages_ready{work})"),
                ("unacked", f"sum(rabbitmq_detailed_queue_messages_unacked{work})"),
            ),
        ),
        Panel(
            "Processing time",
            tuple((f"p{round(q * 100)}", quantile(q)) for q in (0.5, 0.95, 0.99)),
            unit="s",
        ),
        Panel(
            "Consumers against KEDA's target",
            (
                ("running", f"sum(kube_deployment_status_replicas_available{deployment})"),
                ("KEDA target", f"sum(kube_horizontalpodautoscaler_status_desired_replicas{keda_hpa})"),
                ("subscribed", f"sum(rabbitmq_detailed_queue_consumers{work})"),
            ),
        ),
        Panel(
            "Broker health",
            (
                ("nodes up", f"sum(up{selector(namespace=namespace, service=broker_release, job=broker_release)})"),
                ("memory alarm", f"max(rabbitmq_alarms_memory_used_watermark{ns})"),
                ("disk alarm", f"max(rabbitmq_alarms_free_disk_space_watermark{ns})"),
                ("services connected", f"sum(burrow_broker_connected{ns})"),
            ),
        ),
        Panel(
            "Dead letters",
            (
                ("dead-lettered per hour", f"sum(increase(burrow_messages_dead_lettered_total{ns}[1h]))"),
                ("in the dead-letter queue", f"sum(rabbitmq_detailed_queue_messages{dead})"),
            ),
        ),
    ]


def dashboard(namespace: str, queue: str, consumer: str, broker_release: str) -> dict[str, Any]:
    """A Grafana dashboard model for one Burrow app layer."""
    return {
        "uid": f"burrow-{namespace}"[:40],
        "title": f"Burrow / {namespace}",
        "tags": ["burrow", "rabbitmq"],
        "timezone": "utc",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [{"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"}]
        },
        "panels": [panel.render(i) for i, panel in enumerate(panels(namespace, queue, consumer, broker_release))],
    }
