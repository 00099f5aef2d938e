"""`make bench-apps`: the services against a raw pika pipeline with the same guarantees, in one run.

Every path: persistent messages, publisher confirms, `mandatory`, a durable quorum queue, manual
acks, the same prefetch, and the same number of publishing connections (`BENCH_CONNECTIONS`,
default 4, each with one message in flight, as the producer's connections have). The services'
paths are the real ones: HTTP clients (2 per connection, so a connection never waits for a
request) `POST /publish` to the producer process, one message per request or a list of them (a
batch), and the producer answers once the broker confirmed; the consumer process processes and
records each id in its processed-id log. Everything runs on one broker, in this process tree, one
path after the other, with a raw pika run before and after each path: each path's ratio is to
the mean of the two raw runs around it, so a load that drifts during the benchmark (the machine is
shared) is cancelled as far as it can be. The sequence runs `BENCH_ROUNDS` times (default 2); a
path's rate and ratio are the medians over the rounds, its latencies are pooled.

Printed per path: messages per second from the first send to the last message processed, the
ratio to raw pika (target for the batch path: >= 0.9), the producer's CPU seconds per message (for
raw pika: its publishing threads' CPU), and p50/p99 latency from send (the request that carried
the message) to processed. The machine's load average is printed before and after.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pika

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.broker import Broker, broker_session  # noqa: E402
from tests.support.services import ServiceProcess, wait_until  # noqa: E402

N = int(os.environ.get("BENCH_MESSAGES", "4000"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "4"))
CLIENTS = 2 * CONNECTIONS
PREFETCH = int(os.environ.get("BENCH_PREFETCH", "50"))  # both sides; the consumer's configured default is 10
BATCHES = (1, 10, 100)
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
TARGET = 0.9


@dataclass
class Run:
    name: str
    rate: float
    latencies: list[float]
    producer_cpu: float  # CPU seconds per message on the publishing side

    def percentile(self, q: int) -> float:
        return statistics.quantiles(self.latencies, n=100)[q - 1] * 1000

    def line(self, ratio: float, note: str = "") -> str:
        return (
            f"{self.name:<30}{self.rate:8.0f}  {ratio:6.2f}  {self.producer_cpu * 1000:10.2f}  "
            f"{self.percentile(50):7.1f}  {self.percentile(99):7.1f}{note}"
        )


HEADER = f"{'path':<30}{'msg/s':>8}  {'x raw':>6}  {'CPU ms/msg':>10}  {'p50 ms':>7}  {'p99 ms':>7}"


def body(message_id: str) -> bytes:
    return json.dumps({"id": message_id, "created_at": "2026-01-01T00:00:00+00:00", "payload": {}}).encode()


def in_parallel(count: int, work: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def baseline(broker: Broker) -> Run:
    params = pika.ConnectionParameters(
        broker.host, broker.port, broker.vhost, pika.PlainCredentials(broker.username, broker.password)
    )
    queue = f"bench.raw.{uuid.uuid4().hex[:8]}"
    setup = pika.BlockingConnection(params)
    setup.channel().queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    sent: dict[str, float] = {}
    done: dict[str, float] = {}
    cpu: list[float] = []
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
        started = time.thread_time()
        connection = pika.BlockingConnection(params)
        channel = connection.channel()
        channel.confirm_delivery()
        for i in range(lane, N, CONNECTIONS):
            message_id = f"raw-{i}"
            sent[message_id] = time.time()
            channel.basic_publish("", queue, body(message_id), pika.BasicProperties(delivery_mode=2), mandatory=True)
        connection.close()
        cpu.append(time.thread_time() - started)

    consumer = threading.Thread(target=consume)
    consumer.start()
    ready.wait(30)
    in_parallel(CONNECTIONS, publish)
    consumer.join(600)
    setup.channel().queue_delete(queue)
    setup.close()
    return Run(
        "raw pika", N / (max(done.values()) - min(sent.values())), [done[i] - sent[i] for i in sent], sum(cpu) / N
    )


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def processed_at(log: Path) -> dict[str, float]:
    return {entry["id"]: entry["at"] for entry in map(json.loads, log.read_text().splitlines())}


def request_body(ids: list[str], batch: int | None) -> bytes:
    """One message as an object, or a batch (a list) of them."""
    messages = [{"id": message_id, "payload": {}} for message_id in ids]
    return json.dumps(messages[0] if batch is None else messages).encode()


def through_services(broker: Broker, batch: int | None) -> Run:
    """POST /publish -> producer -> broker -> consumer; `batch` messages per request (None: one object)."""
    suffix = uuid.uuid4().hex[:8]
    env = {
        **broker.env(),
        "RABBITMQ_EXCHANGE": f"bench.{suffix}",
        "RABBITMQ_QUEUE": f"bench.work.{suffix}",
        "PREFETCH_COUNT": str(PREFETCH),
    }
    sent: dict[str, float] = {}
    size = batch or 1
    requests_total = (N + size - 1) // size
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "processed.jsonl"
        consumer = ServiceProcess("consumer", {**env, "PROCESSED_LOG": str(log)}, Path(tmp))
        producer = ServiceProcess(
            "producer",
            {**env, "PUBLISH_RATE": "0", "PUBLISH_CONNECTIONS": str(CONNECTIONS), "HTTP_THREADS": str(4 * CONNECTIONS)},
            Path(tmp),
        )
        try:
            consumer.wait_ready()
            producer.wait_ready()
            cpu_before = cpu_seconds(producer.process.pid)

            def post(client: int) -> None:
                connection = http.client.HTTPConnection("127.0.0.1", producer.port, timeout=60)  # keep-alive
                for r in range(client, requests_total, CLIENTS):
                    ids = [f"svc-{i}" for i in range(r * size, min(N, (r + 1) * size))]
                    payload = request_body(ids, batch)
                    now = time.time()
                    sent.update(dict.fromkeys(ids, now))
                    connection.request("POST", "/publish", payload, {"Content-Type": "application/json"})
                    response = connection.getresponse()
                    answer = response.read()
                    assert response.status == 201, (response.status, answer[:300])

            in_parallel(CLIENTS, post)
            wait_until(
                lambda: log.exists() and len(log.read_text().splitlines()) >= N, 600, f"{N} processed", interval=0.05
            )
            cpu = (cpu_seconds(producer.process.pid) - cpu_before) / N
            done = processed_at(log)
        finally:
            producer.close()
            consumer.close()
    name = "POST /publish, 1 message" if batch is None else f"POST /publish, batches of {batch}"
    return Run(name, N / (max(done.values()) - min(sent.values())), [done[i] - sent[i] for i in sent], cpu)


def load() -> str:
    return "load average " + " ".join(f"{value:.2f}" for value in os.getloadavg())


def merged(runs: list[Run], ratios: list[float]) -> tuple[Run, float]:
    """One path over every round: the median rate and ratio, every latency, the mean CPU."""
    return Run(
        runs[0].name,
        statistics.median(r.rate for r in runs),
        [x for r in runs for x in r.latencies],
        statistics.mean(r.producer_cpu for r in runs),
    ), statistics.median(ratios)


def main() -> int:
    print(
        f"bench-apps: {N} messages per path and round, {ROUNDS} rounds, {CONNECTIONS} publishing connections, "
        f"{CLIENTS} HTTP clients, prefetch {PREFETCH}; {load()} ({os.cpu_count()} CPUs)",
        flush=True,
    )
    paths = (None, *BATCHES)
    raws: list[Run] = []
    runs: dict[int | None, list[Run]] = {path: [] for path in paths}
    ratios: dict[int | None, list[float]] = {path: [] for path in paths}
    with broker_session() as broker:
        raws.append(baseline(broker))
        for _ in range(ROUNDS):
            for path in paths:  # each path between two raw pika runs, compared with their mean
                run = through_services(broker, path)
                raws.append(baseline(broker))
                runs[path].append(run)
                ratios[path].append(run.rate / statistics.mean(r.rate for r in raws[-2:]))
    raw, _ = merged(raws, [1.0])
    print(HEADER)
    print(raw.line(1.0, f"   ({len(raws)} runs: {' '.join(f'{r.rate:.0f}' for r in raws)} msg/s)"))
    results = {path: merged(runs[path], ratios[path]) for path in paths}
    for path in paths:
        run, ratio = results[path]
        print(run.line(ratio, f"   (per round: {' '.join(f'{r:.2f}' for r in ratios[path])})"))
    (single, single_ratio), (_, batch_ratio) = results[None], results[BATCHES[-1]]
    print(
        f"batch path (batches of {BATCHES[-1]}) = {batch_ratio:.2f} x raw pika (target >= {TARGET:.2f}) "
        f"{'OK' if batch_ratio >= TARGET else 'MISSED'}"
    )
    print(
        f"single-message path: {single.rate:.0f} msg/s = {single_ratio:.2f} x raw pika, "
        f"p99 {single.percentile(99):.1f} ms send->processed"
    )
    print(f"after: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
