"""Teams' users on a real broker (issue 23, item 4).

A stack with Burrow's broker and two teams (`tests.support.team.tenant_stack`) is synthesized; one
RabbitMQ node boots with the definitions Secret that stack writes, exactly as Terraform would
write it, each `random_password` replaced by a password of this test. Each team's worker then
logs in with the login Secret written for it in the team's namespace: it may do anything on its
team's virtual host, and nothing on Burrow's (`/`) or on the other team's; Burrow's users may do
nothing on a team's virtual host but what KEDA needs (the monitoring user's queue depth).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest

from tests.apps.conftest import carry_one_message
from tests.support.broker import refused, vhost_refused
from tests.support.rabbitmq_node import RabbitMqNode
from tests.support.team import LIMITS, TEAMS, tenant_stack

pytestmark = pytest.mark.broker

BODY = b'{"id": "x"}'


class TeamBroker:
    """The node, and each login as the stack wrote it: `logins[namespace, secret]` = (user, password)."""

    def __init__(self, node: RabbitMqNode, stack: dict, passwords: dict[str, str]) -> None:
        self.node, self.stack = node, stack
        self.logins = {}
        for secret in stack["resource"]["kubernetes_secret_v1"].values():
            data = {key: resolve(value, passwords) for key, value in secret["data"].items()}
            if "rabbitmq-password" in data:
                user = data.get("rabbitmq-username", "burrow")  # the chart's Secret: the administrator's
                self.logins[secret["metadata"]["namespace"], secret["metadata"]["name"]] = (
                    user,
                    data["rabbitmq-password"],
                )

    def team(self, name: str) -> tuple[str, str]:
        return self.logins[name, "rabbitmq-login"]

    def connect(self, login: tuple[str, str], vhost: str) -> pika.BlockingConnection:
        return pika.BlockingConnection(
            pika.ConnectionParameters(
                "127.0.0.1", self.node.amqp_port, vhost, credentials=pika.PlainCredentials(*login)
            )
        )

    def worker_env(self, name: str) -> dict[str, str]:
        """The environment the stack gives team `name`'s worker, pointed at this node."""
        import yaml

        from burrow.k8s.release import terraform_unescape

        [release] = [r for r in self.stack["resource"]["helm_release"].values() if r["name"] == f"{name}-worker"]
        objects = yaml.safe_load(terraform_unescape(release["values"][0]))["objects"]
        [deployment] = [o for o in objects if o["kind"] == "Deployment"]
        env = {
            e["name"]: e["value"]
            for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
            if "value" in e
        }
        user, password = self.team(name)
        return {
            **env,
            "RABBITMQ_HOST": "127.0.0.1",
            "RABBITMQ_PORT": str(self.node.amqp_port),
            "RABBITMQ_USERNAME": user,
            "RABBITMQ_PASSWORD": password,
        }


def resolve(value: str, passwords: dict[str, str]) -> str:
    """`value` with each `${random_password.<name>.result}` replaced by this test's password for it."""
    return re.sub(
        r"\$\{random_password\.([\w-]+)\.result\}", lambda m: passwords.setdefault(m.group(1), uuid.uuid4().hex), value
    )


@pytest.fixture(scope="module")
def team_broker(tmp_path_factory) -> Iterator[TeamBroker]:
    home = tmp_path_factory.mktemp("team-broker")
    stack = tenant_stack(home / "out")
    [definitions] = [
        s for s in stack["resource"]["kubernetes_secret_v1"].values() if s["metadata"]["name"] == "rabbitmq-definitions"
    ]
    passwords: dict[str, str] = {}
    (home / "load_definition.json").write_text(resolve(definitions["data"]["load_definition.json"], passwords))
    node = RabbitMqNode.create(home / "node", config=f"load_definitions = {home / 'load_definition.json'}\n")
    try:
        node.start()
        yield TeamBroker(node, stack, passwords)
    finally:
        node.stop()


def test_a_team_user_declares_publishes_and_consumes_on_its_own_virtual_host(team_broker):
    for name, (exchange, queue, key) in TEAMS.items():
        with team_broker.connect(team_broker.team(name), name) as conn:
            channel = conn.channel()
            channel.confirm_delivery()
            channel.exchange_declare(exchange, "direct", durable=True)
            channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
            channel.queue_bind(queue, exchange, key)
            channel.basic_publish(exchange, key, BODY, pika.BasicProperties(delivery_mode=2), mandatory=True)
            assert channel.queue_declare(queue, passive=True).method.message_count == 1  # confirmed: it is there
            method, _props, body = channel.basic_get(queue)
            assert body == BODY
            channel.basic_ack(method.delivery_tag)
            channel.queue_delete(queue)
            channel.exchange_delete(exchange)


def test_a_team_user_cannot_open_burrows_or_another_teams_virtual_host(team_broker):
    port = team_broker.node.amqp_port
    for name in TEAMS:
        others = {"/", *TEAMS} - {name}
        assert others and all(vhost_refused(port, *team_broker.team(name), vhost) for vhost in others)
        assert not vhost_refused(port, *team_broker.team(name), name)


def test_burrows_users_may_do_nothing_on_a_teams_virtual_host_but_tell_keda_a_queues_depth(team_broker):
    port = team_broker.node.amqp_port
    producer, consumer = (
        team_broker.logins["messaging", "rabbitmq-producer"],
        team_broker.logins["messaging", "rabbitmq-consumer"],
    )
    assert vhost_refused(port, *producer, "orders") and vhost_refused(port, *consumer, "orders")
    with team_broker.connect(team_broker.team("orders"), "orders") as conn:
        conn.channel().queue_declare("orders.depth", durable=True)
    admin = team_broker.logins["messaging", "rabbitmq-auth"]
    definitions = json.loads((Path(team_broker.node.home).parent / "load_definition.json").read_text())
    [monitoring] = [(u["name"], u["password"]) for u in definitions["users"] if u["name"] == "burrow-monitoring"]
    with team_broker.connect(monitoring, "orders") as conn:  # KEDA's scaler, with vhostName: orders
        assert conn.channel().queue_declare("orders.depth", passive=True).method.message_count == 0
    assert refused(port, *monitoring, lambda ch: ch.basic_get("orders.depth"), vhost="orders")
    assert refused(port, *monitoring, lambda ch: ch.queue_purge("orders.depth"), vhost="orders")
    assert refused(port, *monitoring, lambda ch: ch.queue_declare("monitoring-made"), vhost="orders")
    with team_broker.connect(admin, "orders") as conn:  # operators may still act there
        conn.channel().queue_delete("orders.depth")


def test_a_teams_workers_carry_messages_as_the_team_with_the_environment_the_stack_gives_them(team_broker, tmp_path):
    """Burrow's producer and consumer images stand in for the team's: the same variables (host, the
    team's virtual host, exchange, queue, `RABBITMQ_TOPOLOGY=declare`) and the team's login."""
    env = team_broker.worker_env("billing")
    assert env["RABBITMQ_VHOST"] == "billing" and env["RABBITMQ_TOPOLOGY"] == "declare"
    carry_one_message(env, env, tmp_path)


def test_a_team_holds_no_more_queues_or_connections_than_its_limits(team_broker):
    """The virtual host's limits come from the definitions the stack writes: one queue past
    `max_queues` is refused (406), and one connection past `max_connections` (530); the team's own
    name, not Burrow's services, pays for what it takes on the shared broker."""
    limits = LIMITS["orders"]
    login = team_broker.team("orders")
    with team_broker.connect(login, "orders") as conn:
        channel = conn.channel()
        names = [f"limits.{index}" for index in range(limits["max_queues"])]
        for name in names:
            channel.queue_declare(name, durable=True)
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused_queue:
            channel.queue_declare("limits.one-too-many", durable=True)
        assert refused_queue.value.reply_code == 406 and "queue limit" in str(refused_queue.value)
        channel = conn.channel()
        for name in names:
            channel.queue_delete(name)
    opened = [team_broker.connect(login, "orders") for _ in range(limits["max_connections"])]
    try:
        with pytest.raises(pika.exceptions.AMQPConnectionError) as refused_connection:
            team_broker.connect(login, "orders")
        assert "connection limit" in str(refused_connection.value)
    finally:
        for conn in opened:
            conn.close()
    with team_broker.connect(login, "orders"):  # below the limit again once they are closed
        pass
