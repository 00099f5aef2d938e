"""`make bench-apps`: the services against a raw pika pipeline with the same guarantees, in one run.

Every path: persistent messages, publisher confirms, `mandatory`, a durable quorum queue, manual
acks, and the same number of publishing connections (`BENCH_CONNECTIONS`, default 4, each with one
message in flight, as the producer's connections have). Every path ends in the same real consumer
process (its default prefetch and batched acks, recording each id in its processed-id log), so
the paths differ only in how messages are published:

- raw pika: `BENCH_CONNECTIONS` publisher processes (one connection each, no GIL shared with
  anyone), publishing to the services' exchange exactly what the producer publishes;
- the services: HTTP clients (2 per connection, so a connection never waits for a request)
  `POST /publish` to the producer process, one message per request or a list of them (a batch),
  and the producer answers once the broker confirmed.

Both services run with their defaults (HTTP_THREADS 8, PREFETCH_COUNT 10) unless
`BENCH_HTTP_THREADS` / `BENCH_PREFETCH` say otherwise; the configuration used is printed. Each
path runs between two raw runs and its ratio is to their mean, so a load that drifts during the
benchmark (the machine is shared) is cancelled as far as it can be. The sequence runs
`BENCH_ROUNDS` times (default 5); a path's rate and ratio are the medians over the rounds (the
spread, min/median/max, is printed), its latencies are pooled.

Printed per path: messages per second from the first send to the last message processed, the
ratio to raw pika (target for the batch path: >= 0.9), the publishing side's CPU seconds per
message (the producer process; for raw pika its publisher processes), and p50/p99 latency from
send (the request that carried the message) to processed. `uptime` is printed before and after.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import statistics
import subprocess
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
# The services' defaults unless set (both printed); the consumer's prefetch serves every path.
SERVICE_ENV = {
    name: os.environ[variable]
    for name, variable in (("HTTP_THREADS", "BENCH_HTTP_THREADS"), ("PREFETCH_COUNT", "BENCH_PREFETCH"))
    if variable in os.environ
}
BATCHES = (1, 10, 100)
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
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


def in_parallel(count: int, work: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def raw_publisher(broker: dict[str, str], lane: int, ready, start, results) -> None:
    """One raw pika publisher process: what the producer's lane `lane` would publish, as fast as confirms allow."""
    params = pika.ConnectionParameters(
        broker["RABBITMQ_HOST"],
        int(broker["RABBITMQ_PORT"]),
        broker.get("RABBITMQ_VHOST", "/"),
        pika.PlainCredentials(broker["RABBITMQ_USERNAME"], broker["RABBITMQ_PASSWORD"]),
    )
    connection = pika.BlockingConnection(params)
    channel = connection.channel()
    channel.confirm_delivery()
    ready.put(lane)
    start.wait(60)
    started, sent = time.process_time(), {}
    for i in range(lane, N, CONNECTIONS):
        message = {"id": f"raw-{i}", "created_at": time.strftime("%Y-%m-%dT%H:%M:%S+00:00"), "payload": {}}
        sent[message["id"]] = time.time()
        channel.basic_publish(
            broker["RABBITMQ_EXCHANGE"],
            "work",
            json.dumps(message).encode(),
            pika.BasicProperties(content_type="application/json", delivery_mode=2, message_id=message["id"]),
            mandatory=True,
        )
    cpu = time.process_time() - started
    connection.close()
    results.put((sent, cpu))


def raw(env: dict[str, str], sent: dict[str, float], _tmp: Path) -> float:
    """Raw pika publishers, one process per connection; CPU seconds they spent publishing."""
    spawn = multiprocessing.get_context("spawn")
    ready, start, results = spawn.Queue(), spawn.Event(), spawn.Queue()
    processes = [
        spawn.Process(target=raw_publisher, args=(env, lane, ready, start, results)) for lane in range(CONNECTIONS)
    ]
    for process in processes:
        process.start()
    for _ in processes:  # every publisher connected before the clock starts
        ready.get(timeout=120)
    start.set()
    cpu = 0.0
    for _ in processes:
        lane_sent, lane_cpu = results.get(timeout=600)
        sent.update(lane_sent)
        cpu += lane_cpu
    for process in processes:
        process.join(30)
        assert process.exitcode == 0, process.exitcode
    return cpu


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def processed_at(log: Path) -> dict[str, float]:
    return {entry["id"]: entry["at"] for entry in map(json.loads, log.read_text().splitlines())}


def request_body(ids: list[str], batch: int | None) -> bytes:
    """One message as an object, or a batch (a list) of them."""
    messages = [{"id": message_id, "payload": {}} for message_id in ids]
    return json.dumps(messages[0] if batch is None else messages).encode()


def services(batch: int | None) -> Callable[[dict[str, str], dict[str, float], Path], float]:
    """POST /publish to a producer process, `batch` messages per request (None: one object)."""

    def publish(env: dict[str, str], sent: dict[str, float], tmp: Path) -> float:
        size = batch or 1
        requests_total = (N + size - 1) // size
        producer = ServiceProcess(
            "producer", {**env, "PUBLISH_RATE": "0", "PUBLISH_CONNECTIONS": str(CONNECTIONS)}, tmp
        )
        try:
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
            return cpu_seconds(producer.process.pid) - cpu_before
        finally:
            producer.close()

    return publish


def through_consumer(
    broker: Broker, name: str, publish: Callable[[dict[str, str], dict[str, float], Path], float]
) -> Run:
    """`publish` N messages to a fresh exchange and queue; the real consumer process takes them all."""
    suffix = uuid.uuid4().hex[:8]
    env = {
        **broker.env(),
        "RABBITMQ_EXCHANGE": f"bench.{suffix}",
        "RABBITMQ_QUEUE": f"bench.work.{suffix}",
        **SERVICE_ENV,
    }
    sent: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "processed.jsonl"
        consumer = ServiceProcess("consumer", {**env, "PROCESSED_LOG": str(log)}, Path(tmp))
        try:
            consumer.wait_ready()
            cpu = publish(env, sent, Path(tmp)) / N
            wait_until(
                lambda: log.exists() and len(log.read_text().splitlines()) >= N, 600, f"{N} processed", interval=0.05
            )
            done = processed_at(log)
        finally:
            consumer.close()
    return Run(name, N / (max(done.values()) - min(sent.values())), [done[i] - sent[i] for i in sent], cpu)


def baseline(broker: Broker) -> Run:
    return through_consumer(broker, "raw pika", raw)


def through_services(broker: Broker, batch: int | None) -> Run:
    name = "POST /publish, 1 message" if batch is None else f"POST /publish, batches of {batch}"
    return through_consumer(broker, name, services(batch))


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def spread(values: list[float], digits: int = 2) -> str:
    return "/".join(f"{v:.{digits}f}" for v in (min(values), statistics.median(values), max(values)))


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
        f"bench-apps: {N} messages per path and round, {ROUNDS} rounds, {CONNECTIONS} publishing connections "
        f"(raw pika: {CONNECTIONS} processes), {CLIENTS} HTTP clients; producer HTTP_THREADS "
        f"{SERVICE_ENV.get('HTTP_THREADS', '8 (default)')}, consumer PREFETCH_COUNT "
        f"{SERVICE_ENV.get('PREFETCH_COUNT', '10 (default)')}, every path ends in the real consumer; {os.cpu_count()} CPUs",
        flush=True,
    )
    print(f"before: {load()}", flush=True)
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
    print(raw.line(1.0, f"   ({len(raws)} runs, min/median/max {spread([r.rate for r in raws], 0)} msg/s)"))
    results = {path: merged(runs[path], ratios[path]) for path in paths}
    for path in paths:
        run, ratio = results[path]
        print(
            run.line(
                ratio,
                f"   (x raw min/median/max {spread(ratios[path])}; per round {' '.join(f'{r:.2f}' for r in ratios[path])})",
            )
        )
    (single, single_ratio), (_, batch_ratio) = results[None], results[BATCHES[-1]]
    print(
        f"batch path (batches of {BATCHES[-1]}) = {batch_ratio:.2f} x raw pika, median of {ROUNDS} rounds "
        f"(min/median/max {spread(ratios[BATCHES[-1]])}; target >= {TARGET:.2f}) "
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
