"""`make bench-apps`: messages per second producer -> RabbitMQ -> consumer against raw pika.

Both sides use confirms and acks on the same local broker, in this process tree. The
baseline publishes N messages with confirms from one loop and consumes them with acks;
the measured path runs the real producer and consumer processes and times N messages
from the first publish to the last ack. Target: >= 0.7x the baseline.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pika

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.broker import broker_session  # noqa: E402
from tests.support.services import ServiceProcess, wait_until  # noqa: E402

N = int(os.environ.get("BENCH_MESSAGES", "5000"))


def baseline(broker) -> float:
    params = pika.ConnectionParameters(broker.host, broker.port, broker.vhost, pika.PlainCredentials(broker.username, broker.password))
    queue = f"bench.raw.{uuid.uuid4().hex[:8]}"
    connection = pika.BlockingConnection(params)
    channel = connection.channel()
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    channel.confirm_delivery()
    channel.basic_qos(prefetch_count=50)
    start = time.perf_counter()
    for i in range(N):
        body = json.dumps({"id": str(i), "created_at": "2026-01-01T00:00:00+00:00", "payload": {}}).encode()
        channel.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2), mandatory=True)
    for received, (method, _props, _body) in enumerate(channel.consume(queue, auto_ack=False), start=1):
        channel.basic_ack(method.delivery_tag)
        if received == N:
            break
    elapsed = time.perf_counter() - start
    channel.cancel()
    channel.queue_delete(queue)
    connection.close()
    return N / elapsed


def through_services(broker) -> float:
    suffix = uuid.uuid4().hex[:8]
    env = {**broker.env(), "RABBITMQ_EXCHANGE": f"bench.{suffix}", "RABBITMQ_QUEUE": f"bench.work.{suffix}", "PREFETCH_COUNT": "50"}
    with tempfile.TemporaryDirectory() as tmp:
        consumer = ServiceProcess("consumer", env, Path(tmp))
        try:
            consumer.wait_ready()
            producer = ServiceProcess("producer", {**env, "PUBLISH_RATE": "100000"}, Path(tmp))
            try:
                # Time the steady stream, not process start-up: from the producer being ready
                # until N more messages have been acknowledged by the consumer.
                producer.wait_ready()
                start, acked = time.perf_counter(), consumer.metric("burrow_messages_acked_total")
                wait_until(lambda: consumer.metric("burrow_messages_acked_total") >= acked + N, 600, f"{N} acks", interval=0.05)
                elapsed = time.perf_counter() - start
            finally:
                producer.close()
        finally:
            consumer.close()
    return N / elapsed


def main() -> int:
    with broker_session() as broker:
        raw = baseline(broker)
        services = through_services(broker)
    print(f"raw pika baseline   {raw:8.0f} msg/s   ({N} messages, confirms + acks)")
    print(f"producer->consumer  {services:8.0f} msg/s   (separate processes, confirms + acks)")
    ratio = services / raw
    print(f"ratio = {ratio:.2f}  (target >= 0.70) {'OK' if ratio >= 0.7 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
