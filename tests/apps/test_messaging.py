"""Producer -> real RabbitMQ -> consumer, as separate processes: nothing lost, nothing processed twice."""

from __future__ import annotations

import json
import threading

import pytest

from tests.apps.conftest import open_channel, processed_ids, queue_depth
from tests.support.services import wait_until

N = 200


def publish_n(producer, n: int, prefix: str) -> list[str]:
    ids = []
    for i in range(n):
        message_id = f"{prefix}-{i}"
        response = producer.post("/publish", json.dumps({"id": message_id, "payload": {"n": i}}).encode())
        assert response.status_code == 201, response.text
        ids.append(message_id)
    return ids


def test_every_published_message_arrives_exactly_once_in_effect(start, tmp_path):
    log = tmp_path / "processed.jsonl"
    consumer = start("consumer", PROCESSED_LOG=str(log), PREFETCH_COUNT="20")
    producer = start("producer", PUBLISH_RATE="0")
    consumer.wait_ready()
    producer.wait_ready()
    ids = publish_n(producer, N, "e2e")
    wait_until(lambda: len(processed_ids(log)) >= N, 60, f"{N} messages processed")
    processed = processed_ids(log)
    assert sorted(processed) == sorted(ids)
    assert producer.metric("burrow_messages_confirmed_total") == N
    wait_until(lambda: consumer.metric("burrow_messages_acked_total") == N, 30, "acknowledgements flushed")


def test_scheduled_publishing_at_the_configured_rate_reaches_the_consumer(start, tmp_path):
    log = tmp_path / "processed.jsonl"
    consumer = start("consumer", PROCESSED_LOG=str(log))
    consumer.wait_ready()
    producer = start("producer", PUBLISH_RATE="50")
    wait_until(lambda: len(processed_ids(log)) >= 25, 30, "scheduled messages processed")
    assert producer.metric("burrow_messages_confirmed_total") >= 25


class Publisher(threading.Thread):
    """Posts messages with known ids until stopped; records every id the producer accepted."""

    def __init__(self, producer, prefix: str) -> None:
        super().__init__(daemon=True)
        self.producer, self.prefix = producer, prefix
        self.accepted: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            message_id = f"{self.prefix}-{i}"
            i += 1
            try:
                response = self.producer.post("/publish", json.dumps({"id": message_id, "payload": i}).encode())
            except Exception:  # a refused request was not accepted: nothing to account for
                continue
            if response.status_code == 201:
                self.accepted.append(message_id)


def test_broker_restart_mid_stream_loses_nothing_and_ready_recovers(start, broker, topology, tmp_path):
    if not broker.controllable:
        pytest.fail("this test restarts the broker with rabbitmqctl; run it against a local broker")
    log = tmp_path / "processed.jsonl"
    consumer = start("consumer", PROCESSED_LOG=str(log))
    producer = start("producer", PUBLISH_RATE="0")
    consumer.wait_ready()
    producer.wait_ready()
    publisher = Publisher(producer, "restart")
    publisher.start()
    wait_until(lambda: len(processed_ids(log)) >= 50, 30, "stream flowing")
    down = {"producer": False, "consumer": False}

    def both_reported_down() -> bool:
        for name, service in (("producer", producer), ("consumer", consumer)):
            down[name] = down[name] or service.ready_status() == 503
        return all(down.values())

    restart = threading.Thread(target=broker.restart, kwargs={"down_seconds": 3})
    restart.start()
    wait_until(both_reported_down, 30, "/ready to report 503 on both services", interval=0.1)
    restart.join()
    producer.wait_ready(60)
    consumer.wait_ready(60)
    accepted_before = len(publisher.accepted)
    wait_until(lambda: len(publisher.accepted) > accepted_before + 50, 30, "publishing resumed")
    publisher.stop.set()
    publisher.join(30)
    assert producer.terminate() == 0
    accepted = set(publisher.accepted)
    wait_until(lambda: accepted <= set(processed_ids(log)), 60, "every accepted message processed")
    processed = processed_ids(log)
    assert len(processed) == len(set(processed)), "a message was processed twice"
    assert queue_depth(broker, topology["RABBITMQ_QUEUE"]) == 0


def test_sigterm_mid_batch_then_restart_loses_nothing_and_processes_nothing_twice(start, broker, topology, tmp_path):
    log = tmp_path / "processed.jsonl"
    producer = start("producer", PUBLISH_RATE="0")
    producer.wait_ready()
    ids = publish_n(producer, 100, "drain")
    consumer = start("consumer", PROCESSED_LOG=str(log), PREFETCH_COUNT="20", WORK_SECONDS="0.05")
    wait_until(lambda: len(processed_ids(log)) >= 10, 30, "consumer mid-batch")
    assert consumer.terminate(timeout=30) == 0
    first_run = processed_ids(log)
    assert 10 <= len(first_run) < 100, "the consumer should have stopped mid-batch"
    assert '"stopped cleanly"' in consumer.logs()
    # the broker returns the stopped consumer's unacknowledged prefetch once it has seen the close
    # (a wait, not a timing: on a loaded machine the broker's requeue through the quorum log can take seconds)
    wait_until(lambda: queue_depth(broker, topology["RABBITMQ_QUEUE"]) == 100 - len(first_run), 60,
               "the unprocessed rest back on the queue")
    restarted = start("consumer", PROCESSED_LOG=str(log), PREFETCH_COUNT="20")
    wait_until(lambda: len(processed_ids(log)) >= 100, 60, "the rest processed after restart")
    processed = processed_ids(log)
    assert sorted(processed) == sorted(ids)
    assert restarted.metric("burrow_messages_duplicate_total") == 0


POISON = [
    b"not json at all",
    json.dumps({"id": "x", "payload": 1}).encode(),  # no created_at
    json.dumps({"id": 5, "created_at": "2026-01-01T00:00:00+00:00", "payload": 1}).encode(),
    json.dumps({"id": "y", "created_at": "yesterday", "payload": 1}).encode(),
    json.dumps([1, 2, 3]).encode(),
    b"{" + b"x" * (2 * 1024 * 1024),  # larger than MAX_MESSAGE_BYTES
]


def test_poison_messages_go_to_the_dead_letter_queue_and_the_consumer_keeps_going(start, broker, topology, tmp_path):
    log = tmp_path / "processed.jsonl"
    consumer = start("consumer", PROCESSED_LOG=str(log))
    producer = start("producer", PUBLISH_RATE="0")
    consumer.wait_ready()
    producer.wait_ready()
    with open_channel(broker) as channel:
        for body in POISON:
            channel.basic_publish(topology["RABBITMQ_EXCHANGE"], topology["RABBITMQ_ROUTING_KEY"], body)
    good = publish_n(producer, 20, "after-poison")
    dead_queue = topology["RABBITMQ_QUEUE"] + ".dead"
    wait_until(lambda: queue_depth(broker, dead_queue) == len(POISON), 30, "poison in the dead-letter queue")
    wait_until(lambda: set(good) <= set(processed_ids(log)), 30, "good messages still processed")
    assert consumer.metric("burrow_messages_dead_lettered_total") == len(POISON)
    wait_until(lambda: queue_depth(broker, topology["RABBITMQ_QUEUE"]) == 0, 30, "work queue drained and acknowledged")
    dead_lettered_logs = [line for line in consumer.logs().splitlines() if "message dead-lettered" in line]
    assert len(dead_lettered_logs) == len(POISON), "each poison message is logged exactly once"
    assert all(json.loads(line)["level"] == "warning" for line in dead_lettered_logs)
