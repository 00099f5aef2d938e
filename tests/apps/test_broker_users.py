"""The broker's users by role, on a real broker (issue 25, finding 2).

One RabbitMQ node boots, as a cluster's brokers do (`load_definitions`), with the definitions
Burrow renders (`burrow.app.broker_users.broker_definitions`, the function the broker's
ExternalSecret template is built from), federated like prod's (the upstream is a closed loopback
port: the link only retries). Only the passwords (instead of the External Secrets templates) and
the upstream's address differ from what a cluster gets. Each role's user then tries what it must
be able to do and what it must not; the management API answers on a port of its own.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pika
import pytest
import requests
from pika.adapters.blocking_connection import BlockingChannel

from burrow.app.broker_users import ROLES, broker_definitions, dead_letter_names, user_name
from burrow.app.federation import FEDERATION_USER, PLUGIN, BrokerFederation, FederationUpstream
from burrow.app.rabbitmq import CLIENT_ROLES
from burrow.config.schema import MessagingConfig
from burrow_service.messaging import declare_topology
from burrow_service.settings import load_settings
from tests.apps.conftest import carry_one_message
from tests.support.broker import refused
from tests.support.rabbitmq_node import RabbitMqNode, free_port
from tests.support.services import wait_until

pytestmark = pytest.mark.broker

ADMIN = "burrow"
PASSWORDS = {role: uuid.uuid4().hex for role in (*ROLES, "admin", "federation")}
MESSAGING = MessagingConfig()
BODY, PERSISTENT = b'{"id": "x"}', pika.BasicProperties(delivery_mode=2, message_id="x")
FEDERATION = BrokerFederation(
    region="eu-west-1",
    broker_host="rabbitmq.eu-west-1.example.com",
    load_balancer_cidrs=["10.50.32.0/20"],
    peer_cidrs=["10.51.32.0/20"],
    upstreams=[FederationUpstream(region="us-east-1", host="rabbitmq.us-east-1.example.com")],
    credentials_key="burrow/t/rabbitmq",
    federation_key="burrow/t/federation",
    reconnect_delay_seconds=5,
)


def login(role: str) -> tuple[str, str]:
    """(user, password) of a role, the administrator (`admin`) or the federation links."""
    user = {"admin": ADMIN, "federation": FEDERATION_USER}.get(role) or user_name(role)  # type: ignore[arg-type]
    return user, PASSWORDS[role]


class Node:
    def __init__(self, node: RabbitMqNode, management_port: int) -> None:
        self.node, self.management = node, f"http://127.0.0.1:{management_port}"

    def channel_as(self, user: str, password: str) -> pika.BlockingConnection:
        return pika.BlockingConnection(
            pika.ConnectionParameters(
                "127.0.0.1", self.node.amqp_port, credentials=pika.PlainCredentials(user, password)
            )
        )

    def as_role(self, role: str) -> pika.BlockingConnection:
        return self.channel_as(*login(role))

    def refused(self, role: str, act: Callable[[BlockingChannel], object]) -> bool:
        """True when the broker refuses `act(channel)` (403 ACCESS_REFUSED) to the role's user."""
        return refused(self.node.amqp_port, *login(role), act)

    def depth(self, queue: str = MESSAGING.queue) -> int:
        with self.as_role("admin") as conn:
            return conn.channel().queue_declare(queue, passive=True).method.message_count

    def publish_as_admin(self) -> None:
        with self.as_role("admin") as conn:
            conn.channel().basic_publish(MESSAGING.exchange, MESSAGING.routing_key, BODY, PERSISTENT)


@pytest.fixture(scope="module")
def users_broker(tmp_path_factory) -> Iterator[Node]:
    home = tmp_path_factory.mktemp("broker-users")
    management = free_port()
    definitions = broker_definitions(
        ADMIN,
        PASSWORDS["admin"],
        {role: PASSWORDS[role] for role in ROLES},
        MESSAGING,
        FEDERATION,
        PASSWORDS["federation"],
        host_of=lambda _upstream: f"127.0.0.1:{free_port()}",
    )
    (home / "load_definition.json").write_text(json.dumps(definitions))
    node = RabbitMqNode.create(
        home,
        plugins=(PLUGIN, "rabbitmq_management"),
        config=(
            f"load_definitions = {home / 'load_definition.json'}\n"
            f"management.tcp.port = {management}\nmanagement.tcp.ip = 127.0.0.1\n"
        ),
    )
    try:
        node.start()
        yield Node(node, management)
    finally:
        node.stop()


def emptied(node: Node) -> None:
    with node.as_role("admin") as conn:
        channel = conn.channel()
        for queue in (MESSAGING.queue, dead_letter_names(MESSAGING)[1]):
            channel.queue_purge(queue)


def declaring(node: Node, user: str, password: str):
    """The services' settings with `RABBITMQ_TOPOLOGY=declare` (the default)."""
    return load_settings(
        {
            "RABBITMQ_HOST": "127.0.0.1",
            "RABBITMQ_PORT": str(node.node.amqp_port),
            "RABBITMQ_USERNAME": user,
            "RABBITMQ_PASSWORD": password,
        }
    )


def test_the_definitions_declare_exactly_the_services_topology(users_broker):
    """The services' own active declaration (as the administrator) matches what the broker loaded:
    any difference in a queue's or exchange's type or arguments would be PRECONDITION_FAILED."""
    with users_broker.as_role("admin") as conn:
        declare_topology(conn.channel(), declaring(users_broker, ADMIN, PASSWORDS["admin"]))
    bindings = json.loads(
        users_broker.node.ctl("list_bindings", "source_name", "destination_name", "routing_key", "--formatter", "json")
    )
    declared = {(b["source_name"], b["destination_name"], b["routing_key"]) for b in bindings if b["source_name"]}
    dlx, dead = dead_letter_names(MESSAGING)
    assert declared == {(MESSAGING.exchange, MESSAGING.queue, MESSAGING.routing_key), (dlx, dead, dead)}


def test_the_producer_publishes_to_the_exchange_and_can_declare_delete_purge_or_consume_nothing(users_broker):
    emptied(users_broker)
    with users_broker.as_role("producer") as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        channel.basic_publish(MESSAGING.exchange, MESSAGING.routing_key, BODY, PERSISTENT, mandatory=True)
    assert users_broker.depth() == 1
    refused = lambda act: users_broker.refused("producer", act)  # noqa: E731
    # the services' own declaration (what they did before: now only RABBITMQ_TOPOLOGY=passive starts)
    settings = declaring(users_broker, user_name("producer"), PASSWORDS["producer"])
    assert refused(lambda ch: declare_topology(ch, settings))
    assert refused(lambda ch: ch.exchange_declare("producer-made", "topic"))
    assert refused(lambda ch: ch.exchange_declare(MESSAGING.exchange, "direct", durable=True))  # not even a re-declare
    assert refused(lambda ch: ch.queue_declare("producer-made", durable=True))
    assert refused(lambda ch: ch.queue_bind(MESSAGING.queue, MESSAGING.exchange, "elsewhere"))
    assert refused(lambda ch: ch.queue_delete(MESSAGING.queue))
    assert refused(lambda ch: ch.exchange_delete(MESSAGING.exchange))
    assert refused(lambda ch: ch.queue_purge(MESSAGING.queue))
    assert refused(lambda ch: ch.basic_get(MESSAGING.queue))
    assert refused(lambda ch: ch.basic_consume(MESSAGING.queue, lambda *_: None))
    assert refused(lambda ch: ch.basic_publish("", MESSAGING.queue, BODY, PERSISTENT))  # around the exchange
    assert refused(lambda ch: ch.basic_publish(dead_letter_names(MESSAGING)[0], "", BODY, PERSISTENT))
    assert users_broker.depth() == 1  # nothing it tried took the message away


def test_the_consumer_consumes_and_acknowledges_and_cannot_publish(users_broker):
    emptied(users_broker)
    for _ in range(2):
        users_broker.publish_as_admin()
    with users_broker.as_role("consumer") as conn:
        channel = conn.channel()
        channel.basic_qos(prefetch_count=1)
        method, _props, body = channel.basic_get(MESSAGING.queue)
        assert body == BODY
        channel.basic_ack(method.delivery_tag)
        method, _props, _body = channel.basic_get(MESSAGING.queue)
        channel.basic_nack(method.delivery_tag, requeue=False)  # the broker dead-letters it, no right needed
    assert users_broker.depth() == 0
    wait_until(
        lambda: users_broker.depth(dead_letter_names(MESSAGING)[1]) == 1, 30, "the rejected message dead-lettered"
    )
    refused = lambda act: users_broker.refused("consumer", act)  # noqa: E731
    assert refused(lambda ch: ch.basic_publish(MESSAGING.exchange, MESSAGING.routing_key, BODY, PERSISTENT))
    assert refused(lambda ch: ch.basic_publish("", MESSAGING.queue, BODY, PERSISTENT))
    assert refused(lambda ch: ch.queue_declare("consumer-made", durable=True))
    assert refused(lambda ch: ch.queue_delete(MESSAGING.queue))
    assert refused(lambda ch: ch.exchange_declare("consumer-made", "topic"))
    assert refused(lambda ch: ch.basic_get(dead_letter_names(MESSAGING)[1]))  # its own queue only


def test_the_monitoring_user_reads_the_queue_depth_keda_asks_for_and_nothing_else(users_broker):
    """KEDA 2.20's RabbitMQ scaler over AMQP asks with a passive queue.declare (QueueLength mode);
    over HTTP it reads GET /api/queues/<vhost>/<queue>. Both answer; nothing else does."""
    emptied(users_broker)
    users_broker.publish_as_admin()
    with users_broker.as_role("monitoring") as conn:
        assert conn.channel().queue_declare(MESSAGING.queue, passive=True).method.message_count == 1
    login = (user_name("monitoring"), PASSWORDS["monitoring"])
    queue_url = f"{users_broker.management}/api/queues/%2F/{MESSAGING.queue}"
    wait_until(
        lambda: requests.get(queue_url, auth=login, timeout=5).json().get("messages") == 1,
        30,
        "the management API's queue depth",
    )
    assert requests.delete(f"{queue_url}/contents", auth=login, timeout=5).status_code in (401, 403)  # purge
    assert requests.delete(queue_url, auth=login, timeout=5).status_code in (401, 403)
    assert requests.get(f"{users_broker.management}/api/users", auth=login, timeout=5).status_code in (401, 403)
    assert requests.get(f"{users_broker.management}/api/definitions", auth=login, timeout=5).status_code in (401, 403)
    refused = lambda act: users_broker.refused("monitoring", act)  # noqa: E731
    assert refused(lambda ch: ch.basic_get(MESSAGING.queue))
    assert refused(lambda ch: ch.queue_purge(MESSAGING.queue))
    assert refused(lambda ch: ch.basic_publish(MESSAGING.exchange, MESSAGING.routing_key, BODY, PERSISTENT))
    assert refused(lambda ch: ch.queue_declare("monitoring-made", durable=True))
    assert users_broker.depth() == 1
    users = {u["user"]: u["tags"] for u in json.loads(users_broker.node.ctl("list_users", "--formatter", "json"))}
    assert users == {
        ADMIN: ["administrator"],
        user_name("producer"): [],
        user_name("consumer"): [],
        user_name("monitoring"): ["monitoring"],
        FEDERATION_USER: [],
    }


def test_the_federation_user_cannot_write(users_broker):
    refused = lambda act: users_broker.refused("federation", act)  # noqa: E731
    assert refused(lambda ch: ch.basic_publish(MESSAGING.exchange, MESSAGING.routing_key, BODY, PERSISTENT))
    assert refused(lambda ch: ch.basic_publish("", MESSAGING.queue, BODY, PERSISTENT))
    assert refused(lambda ch: ch.queue_declare("federation-made", durable=True))


def test_the_services_start_and_carry_messages_as_their_own_users(users_broker, tmp_path: Path):
    """The producer and the consumer, each with its own login and `RABBITMQ_TOPOLOGY=passive`,
    get ready and carry a message from POST /publish to the processed log."""
    emptied(users_broker)
    base = {
        "RABBITMQ_HOST": "127.0.0.1",
        "RABBITMQ_PORT": str(users_broker.node.amqp_port),
        "RABBITMQ_VHOST": "/",
        "RABBITMQ_TOPOLOGY": "passive",
    }
    login = {
        role: {"RABBITMQ_USERNAME": user_name(role), "RABBITMQ_PASSWORD": PASSWORDS[role]} for role in CLIENT_ROLES
    }
    carry_one_message({**base, **login["consumer"]}, {**base, **login["producer"]}, tmp_path)
