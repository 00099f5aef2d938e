"""A real RabbitMQ for the tests, never a mock, and never state left by someone else.

`broker_session()` yields a `Broker` for one test session:
- `RABBITMQ_URL` names a broker (`.ci/run` starts a dedicated node and names it; with
  `BURROW_RABBITMQ_NODE_HOME` the tests may also stop and start that node);
- otherwise a dedicated node is started for the session (`tests/support/rabbitmq_node.py`)
  and removed afterwards.
On a broker the tests control, the session gets a vhost of its own, created empty and deleted
at the end, so nothing another run or test left behind can change an outcome. When no broker
can be had the tests fail (they do not skip).
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

import pika
from pika.adapters.blocking_connection import BlockingChannel

from tests.support.rabbitmq_node import RabbitMqNode, port_open


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    username: str
    password: str
    vhost: str
    node: RabbitMqNode | None  # set when the tests may stop and start the broker
    metrics_url: str  # RabbitMQ's Prometheus plugin

    @property
    def controllable(self) -> bool:
        return self.node is not None

    def env(self) -> dict[str, str]:
        return {
            "RABBITMQ_HOST": self.host,
            "RABBITMQ_PORT": str(self.port),
            "RABBITMQ_USERNAME": self.username,
            "RABBITMQ_PASSWORD": self.password,
            "RABBITMQ_VHOST": self.vhost,
        }

    @property
    def detailed_metrics_url(self) -> str:
        """Per-queue metrics of this session's vhost only."""
        return f"{self.metrics_url}/metrics/detailed?vhost={quote(self.vhost, safe='')}"

    def restart(self, down_seconds: float = 2.0) -> None:
        """Stop the broker application (every connection drops), wait, start it again."""
        assert self.node is not None, "this broker is not controlled by the tests"
        self.node.ctl("stop_app")
        time.sleep(down_seconds)
        self.node.ctl("start_app")
        wait_for_port(self.host, self.port, 60)

    def crash_and_restart(self, down_seconds: float = 2.0) -> None:
        """SIGKILL the broker's VM mid-stream, wait, and boot it again from its data directory."""
        assert self.node is not None, "this broker is not controlled by the tests"
        self.node.kill()
        time.sleep(down_seconds)
        self.node.start()


def wait_for_port(host: str, port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        time.sleep(0.5)
    raise RuntimeError(f"nothing listens on {host}:{port} after {seconds:.0f} s")


def _from_url(url: str, node: RabbitMqNode | None, metrics_url: str) -> Broker:
    parsed = urlparse(url)
    vhost = unquote(parsed.path[1:]) if len(parsed.path) > 1 else "/"
    return Broker(
        parsed.hostname or "127.0.0.1",
        parsed.port or 5672,
        unquote(parsed.username or "guest"),
        unquote(parsed.password or "guest"),
        vhost,
        node,
        metrics_url,
    )


@contextmanager
def _own_vhost(broker: Broker) -> Iterator[Broker]:
    """The same broker with a fresh, empty vhost for this session, deleted afterwards."""
    if broker.node is None:
        yield broker
        return
    vhost = f"burrow-test-{uuid.uuid4().hex[:10]}"
    broker.node.ctl("add_vhost", vhost)
    broker.node.ctl("set_permissions", "-p", vhost, broker.username, ".*", ".*", ".*")
    try:
        yield Broker(broker.host, broker.port, broker.username, broker.password, vhost, broker.node, broker.metrics_url)
    finally:
        broker.node.ctl("delete_vhost", vhost)


@contextmanager
def broker_session() -> Iterator[Broker]:
    if os.environ.get("BURROW_TEST_TIER") == "fast":
        raise RuntimeError(
            "a test marked fast reached a broker: name the `broker` fixture (tests/conftest.py FIXTURE_TIERS) "
            "so the classifier puts it in the broker tier"
        )
    url = os.environ.get("RABBITMQ_URL")
    if url:
        home = os.environ.get("BURROW_RABBITMQ_NODE_HOME")
        node = RabbitMqNode.load(Path(home)) if home else None
        metrics = os.environ.get("RABBITMQ_METRICS_URL") or (node.metrics_url if node else "http://127.0.0.1:15692")
        with _own_vhost(_from_url(url, node, metrics)) as broker:
            yield broker
        return
    node = RabbitMqNode.create(Path(tempfile.mkdtemp(prefix="burrow-rabbitmq-")))
    try:
        node.start()
        with _own_vhost(_from_url(node.url, node, node.metrics_url)) as broker:
            yield broker
    finally:
        node.stop()


def refused(port: int, user: str, password: str, act: Callable[[BlockingChannel], object], vhost: str = "/") -> bool:
    """True when the broker on loopback `port` closes the channel with 403 ACCESS_REFUSED for
    `act(channel)`, done as `user` on `vhost` on a channel with publisher confirms."""
    credentials = pika.PlainCredentials(user, password)
    with pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port, vhost, credentials=credentials)) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        try:
            act(channel)
        except pika.exceptions.ChannelClosedByBroker as closed:
            return closed.reply_code == 403
    return False


def vhost_refused(port: int, user: str, password: str, vhost: str) -> bool:
    """True when the broker on loopback `port` refuses `user` (whose password it accepts) the virtual
    host `vhost`: connection.open answered with 530 NOT_ALLOWED."""
    parameters = pika.ConnectionParameters("127.0.0.1", port, vhost, credentials=pika.PlainCredentials(user, password))
    try:
        pika.BlockingConnection(parameters).close()
    except pika.exceptions.ProbableAccessDeniedError as denied:  # pika's name for a 530 at connection.open
        return f"(530) \"NOT_ALLOWED - access to vhost '{vhost}' refused for user '{user}'\"" in str(denied)
    return False
