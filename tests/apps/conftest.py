from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pika
import pytest

from tests.support.broker import Broker, broker_session
from tests.support.services import ServiceProcess, wait_until


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    """A real broker with a vhost of this session's own (see tests/support/broker.py)."""
    with broker_session() as session:
        yield session


@pytest.fixture
def topology(broker: Broker) -> Iterator[dict[str, str]]:
    """Fresh exchange and queue names for one test; deleted afterwards."""
    suffix = uuid.uuid4().hex[:8]
    names = {
        "RABBITMQ_EXCHANGE": f"test.events.{suffix}",
        "RABBITMQ_QUEUE": f"test.work.{suffix}",
        "RABBITMQ_ROUTING_KEY": "work",
    }
    yield names
    with open_channel(broker) as channel:
        queue = names["RABBITMQ_QUEUE"]
        for q in (queue, f"{queue}.dead"):
            channel.queue_delete(q)
        for ex in (names["RABBITMQ_EXCHANGE"], f"{queue}.dlx"):
            channel.exchange_delete(ex)


class open_channel:
    def __init__(self, broker: Broker) -> None:
        self.params = pika.ConnectionParameters(
            broker.host, broker.port, broker.vhost, pika.PlainCredentials(broker.username, broker.password)
        )

    def __enter__(self):
        self.connection = pika.BlockingConnection(self.params)
        return self.connection.channel()

    def __exit__(self, *exc) -> None:
        self.connection.close()


@pytest.fixture
def start(broker: Broker, topology: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Start a service process against the real broker; every one is stopped after the test."""
    started: list[ServiceProcess] = []

    def _start(role: str, **env: str) -> ServiceProcess:
        service = ServiceProcess(role, {**broker.env(), **topology, **env}, tmp_path)
        started.append(service)
        return service

    yield _start
    for service in started:
        service.close()


def processed_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()]


def carry_one_message(consumer_env: dict[str, str], producer_env: dict[str, str], tmp_path: Path) -> None:
    """Start a consumer and a producer with these environments, POST one message to the producer and
    wait until the consumer has processed it; both are stopped afterwards, whatever happens."""
    log = tmp_path / "processed.jsonl"
    services = [
        ServiceProcess("consumer", {**consumer_env, "PROCESSED_LOG": str(log)}, tmp_path),
        ServiceProcess("producer", {**producer_env, "PUBLISH_RATE": "0"}, tmp_path),
    ]
    try:
        for service in services:
            service.wait_ready()
        message_id = uuid.uuid4().hex
        answer = services[1].post("/publish", json.dumps({"id": message_id, "payload": {"n": 1}}).encode())
        assert answer.status_code == 201, answer.text
        wait_until(lambda: processed_ids(log) == [message_id], 30, "the message processed")
    finally:
        for service in services:
            service.close()


def queue_depth(broker: Broker, queue: str) -> int:
    with open_channel(broker) as channel:
        return channel.queue_declare(queue, passive=True).method.message_count
