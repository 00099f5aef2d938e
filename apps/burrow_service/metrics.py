"""Prometheus metrics both services expose on /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PUBLISHED = Counter("burrow_messages_published", "Messages handed to the broker", ["queue"])
CONFIRMED = Counter("burrow_messages_confirmed", "Published messages the broker confirmed", ["queue"])
PUBLISH_FAILED = Counter(
    "burrow_messages_publish_failed", "Publish attempts that were returned, nacked or cut off (then retried)", ["queue"]
)
CONSUMED = Counter("burrow_messages_consumed", "Messages delivered to the consumer", ["queue"])
ACKED = Counter("burrow_messages_acked", "Messages processed and acknowledged", ["queue"])
DUPLICATES = Counter("burrow_messages_duplicate", "Redelivered messages recognised by id and not processed again", ["queue"])
DEAD_LETTERED = Counter("burrow_messages_dead_lettered", "Invalid messages rejected into the dead-letter queue", ["queue"])
PROCESSING = Histogram(
    "burrow_message_processing_seconds",
    "Time spent processing one message",
    ["queue"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CONNECTED = Gauge("burrow_broker_connected", "1 while the broker connection and channel are open", ["queue"])
BLOCKED = Gauge("burrow_broker_blocked", "1 while the broker blocks this service's publishing (resource alarm)", ["queue"])
REJECTED = Counter(
    "burrow_publish_rejected", "POST /publish answered 503: nothing was acknowledged, the client retries", ["queue", "reason"]
)
RECONNECTS = Counter("burrow_broker_reconnects", "Connection attempts after a failure", ["queue"])

ALL = (PUBLISHED, CONFIRMED, PUBLISH_FAILED, CONSUMED, ACKED, DUPLICATES, DEAD_LETTERED, PROCESSING, CONNECTED, BLOCKED, RECONNECTS)


def register_queue(queue: str) -> None:
    """Create every series for `queue` up front, so /metrics shows zeros instead of nothing."""
    for metric in ALL:
        metric.labels(queue=queue)
