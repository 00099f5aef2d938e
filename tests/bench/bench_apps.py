"""`make bench-apps`: the services against a raw pika pipeline with the same guarantees.

Both sides: persistent messages, publisher confirms, `mandatory`, a durable quorum queue, manual
acks, the same prefetch, and the same number of publishing connections (`BENCH_CONNECTIONS`,
default 4, each with one message in flight, as the producer's connections have). The measured
path is the real one: HTTP clients `POST /publish` to the producer process (2 per connection,
so a connection never waits for a request), which answers once the broker confirmed; the
consumer process processes and records each id. Both run on the same broker, in this process
tree. Printed: messages per second from the first send to the last message processed, the
ratio (target >= 0.9), and p50/p99 latency from send (POST) to processed.

A third run publishes on the producer's own schedule (`PUBLISH_RATE`, no HTTP) over the same
connections: the messaging path without the HTTP hop, to show where the difference goes. The
producer's CPU seconds per message are printed for both.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pika

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.broker import Broker, broker_session  # noqa: E402
from tests.support.services import ServiceProcess, wait_until  # noqa: E402

N = int(os.environ.get("BENCH_MESSAGES", "4000"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "4"))
PREFETCH = 50


@dataclass
class Run:
    rate: float
    latencies: list[float]
    producer_cpu: float | None = None  # CPU seconds per message in the producer process

    def percentile(self, q: int) -> float:
        return statistics.quantiles(self.latencies, n=100)[q - 1] * 1000

    def line(self, name: str, how: str) -> str:
        cpu = f", producer CPU {self.producer_cpu * 1000:.2f} ms/msg" if self.producer_cpu is not None else ""
        return (f"{name:<22}{self.rate:8.0f} msg/s   p50 {self.percentile(50):6.1f} ms   "
                f"p99 {self.percentile(99):6.1f} ms   ({how}{cpu})")


def body(message_id: str) -> bytes:
    return json.dumps({"id": message_id, "created_at": "2026-01-01T00:00:00+00:00", "payload": {}}).encode()


def in_parallel(count: int, work) -> None:
    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def baseline(broker: Broker) -> Run:
    params = pika.ConnectionParameters(broker.host, broker.port, broker.vhost,
                                       pika.PlainCredentials(broker.username, broker.password))
    queue = f"bench.raw.{uuid.uuid4().hex[:8]}"
    setup = pika.BlockingConnection(params)
    setup.channel().queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    sent: dict[str, float] = {}
    done: dict[str, float] = {}
    ready = threading.Event()

    def consume() -> None:
        connection = pika.BlockingConnection(params)
        channel = connection.channel()
        channel.basic_qos(prefetch_count=PREFETCH)
        ready.set()
        for method, _props, raw in channel.consume(queue, auto_ack=False):
            done[json.loads(raw)["id"]] = time.time()
            channel.basic_ack(method.delivery_tag)
            if len(done) == N:
                break
        channel.cancel()
        connection.close()

    def publish(lane: int) -> None:
        connection = pika.BlockingConnection(params)
        channel = connection.channel()
        channel.confirm_delivery()
        for i in range(lane, N, CONNECTIONS):
            message_id = f"raw-{i}"
            sent[message_id] = time.time()
            channel.basic_publish("", queue, body(message_id), pika.BasicProperties(delivery_mode=2), mandatory=True)
        connection.close()

    consumer = threading.Thread(target=consume)
    consumer.start()
    ready.wait(30)
    in_parallel(CONNECTIONS, publish)
    consumer.join(600)
    setup.channel().queue_delete(queue)
    setup.close()
    return Run(N / (max(done.values()) - min(sent.values())), [done[i] - sent[i] for i in sent])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def processed_at(log: Path) -> dict[str, float]:
    return {entry["id"]: entry["at"] for entry in map(json.loads, log.read_text().splitlines())}


def through_services(broker: Broker, over_http: bool) -> Run:
    suffix = uuid.uuid4().hex[:8]
    env = {**broker.env(), "RABBITMQ_EXCHANGE": f"bench.{suffix}", "RABBITMQ_QUEUE": f"bench.work.{suffix}",
           "PREFETCH_COUNT": str(PREFETCH)}
    sent: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "processed.jsonl"
        consumer = ServiceProcess("consumer", {**env, "PROCESSED_LOG": str(log)}, Path(tmp))
        producer = None
        try:
            consumer.wait_ready()
            if over_http:
                producer = ServiceProcess("producer", {**env, "PUBLISH_RATE": "0", "PUBLISH_CONNECTIONS": str(CONNECTIONS),
                                                       "HTTP_THREADS": str(4 * CONNECTIONS)}, Path(tmp))
                producer.wait_ready()
                cpu_before = cpu_seconds(producer.process.pid)
                clients = 2 * CONNECTIONS

                def post(client: int) -> None:
                    connection = http.client.HTTPConnection("127.0.0.1", producer.port, timeout=30)  # keep-alive
                    for i in range(client, N, clients):
                        message_id = f"svc-{i}"
                        sent[message_id] = time.time()
                        payload = json.dumps({"id": message_id, "payload": {}}).encode()
                        connection.request("POST", "/publish", payload, {"Content-Type": "application/json"})
                        response = connection.getresponse()
                        response.read()
                        assert response.status == 201, response.status

                in_parallel(clients, post)
            else:
                producer = ServiceProcess("producer", {**env, "PUBLISH_RATE": "100000",
                                                       "PUBLISH_CONNECTIONS": str(CONNECTIONS)}, Path(tmp))
                cpu_before = cpu_seconds(producer.process.pid)
            wait_until(lambda: log.exists() and len(log.read_text().splitlines()) >= N, 600, f"{N} processed",
                       interval=0.05)
            cpu = (cpu_seconds(producer.process.pid) - cpu_before) / N
            done = processed_at(log)
        finally:
            if producer:
                producer.close()
            consumer.close()
    if not over_http:  # scheduled messages carry their creation time; take the first N processed
        first = sorted(done.values())[:N]
        return Run(N / (first[-1] - first[0]), [0.0, 0.0], cpu)
    return Run(N / (max(done.values()) - min(sent.values())), [done[i] - sent[i] for i in sent], cpu)


def main() -> int:
    with broker_session() as broker:
        raw = baseline(broker)
        services = through_services(broker, over_http=True)
        scheduled = through_services(broker, over_http=False)
    print(raw.line("raw pika baseline", f"{N} messages, {CONNECTIONS} publishing connections, confirms + acks"))
    print(services.line("POST /publish->consumer", f"HTTP, {CONNECTIONS} publishing connections"))
    ratio = services.rate / raw.rate
    print(f"ratio = {ratio:.2f}  (target >= 0.90) {'OK' if ratio >= 0.9 else 'MISSED'}")
    print(f"without HTTP: producer schedule->consumer {scheduled.rate:.0f} msg/s = {scheduled.rate / raw.rate:.2f} x the "
          f"baseline (producer CPU {scheduled.producer_cpu * 1000:.2f} ms/msg)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
