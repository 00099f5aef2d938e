"""Federation between two regions' brokers, for real: two RabbitMQ nodes on loopback (own node
names, ports and data directories), each booting with the definitions Burrow renders for its
region (`burrow.app.broker_users.broker_definitions`, loaded as the Bitnami chart loads them:
`load_definitions` at boot) and the federation plugin. Only the upstream's address (a loopback
TLS port instead of the other region's load balancer), the CA file links trust (this run's CA,
in place of the chart's mounted `ca.crt`) and the passwords (instead of the External Secrets
templates) differ from what a cluster gets. The links log in as the federation user with the
environment's one federation password, never with the other region's broker password.

Each node has a TLS listener serving a certificate for its region's `broker_host`, issued by
this run's CA (the environment's federation CA); the links dial it with `amqps`, verify the
certificate against the CA and the name by SNI. A downstream that trusts another CA, or dials an
upstream under a name its certificate does not carry, gets no link.

The topology is the services' own (`declare_topology`); ids are counted and printed. The
downstream broker runs Burrow's link keeper (`KEEPER_SCRIPT` with the environment its sidecar
gets), because RabbitMQ 3.10 does not restart a quorum queue's federation link after a restart.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pika
import pytest

from burrow.app.broker_users import ROLES, broker_definitions, dead_letter_names
from burrow.app.federation import (
    AMQPS_PORT,
    CA_FILE,
    CLUSTER_DOMAINS,
    FEDERATION_USER,
    KEEPER_SCRIPT,
    PLUGIN,
    BrokerFederation,
    FederationUpstream,
    keeper_env,
)
from burrow.config.schema import MessagingConfig
from burrow_service.messaging import declare_topology
from burrow_service.settings import load_settings
from tests.support.broker import refused
from tests.support.rabbitmq_node import RabbitMqNode, free_port, rabbitmq_script
from tests.support.tls import CertificateAuthority

pytestmark = pytest.mark.broker

USER = "burrow"
PASSWORD = uuid.uuid4().hex  # this run's broker password (the services' login in both cells)
FEDERATION_PASSWORD = uuid.uuid4().hex  # the federation user's, one for the environment
REGIONS = ("eu-west-1", "us-east-1")
MESSAGING = MessagingConfig()
TLS_PORTS: dict[str, int] = {}  # each cell's TLS listener (what the other region's links dial), set by `cells`


ZONE = "example.com"


def broker_host(region: str) -> str:
    return f"rabbitmq.{region}.{ZONE}"


def federation_of(region: str, other: str, other_host: str | None = None) -> BrokerFederation:
    return BrokerFederation(
        region=region, broker_host=broker_host(region), load_balancer_cidrs=["10.50.32.0/20"],
        peer_cidrs=["10.51.32.0/20"],
        upstreams=[FederationUpstream(region=other, host=other_host or broker_host(other))],
        credentials_key="burrow/t/rabbitmq", federation_key="burrow/t/federation", reconnect_delay_seconds=1,
    )


def rendered(region: str, other: str, password: str, other_tls_port: int, ca_file: Path,
             other_host: str | None = None) -> dict:
    """`region`'s definitions, its upstream `other` dialled at a loopback TLS port, trusting `ca_file`."""
    return broker_definitions(USER, password, {role: uuid.uuid4().hex for role in ROLES}, MESSAGING,
                              federation_of(region, other, other_host), FEDERATION_PASSWORD,
                              host_of=lambda _upstream: f"127.0.0.1:{other_tls_port}", ca_file=str(ca_file))


def tls_node(home: Path, ca: CertificateAuthority, names: list[str], extra: str = "") -> tuple[RabbitMqNode, int]:
    """A node with the federation plugin, its definitions file and a TLS listener serving a
    certificate for `names` from `ca`; returns it and its TLS port."""
    port = free_port()
    config = f"load_definitions = {home / 'load_definition.json'}\n" + ca.listener_config(home, names, port) + extra
    return RabbitMqNode.create(home, plugins=(PLUGIN,), config=config), port


def start_keeper(node: RabbitMqNode, region: str, other: str) -> subprocess.Popen:
    """The `federation-links` sidecar's script, as rendered, against `node` (checks every 2 s)."""
    env = {**node.env(), **keeper_env(federation_of(region, other), MESSAGING, check_seconds=2),
           "RABBITMQCTL_ARGS": f"-n {node.nodename}",
           "PATH": f"{Path(rabbitmq_script('rabbitmqctl')).parent}:{os.environ['PATH']}"}
    return subprocess.Popen(["bash", "-c", KEEPER_SCRIPT], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


@pytest.fixture(scope="module")
def environment_ca(tmp_path_factory) -> CertificateAuthority:
    """The environment's federation CA (cert-manager's CA ClusterIssuer in every region): an
    intermediate with the critical name constraints Burrow gives it, under an unconstrained root
    that the brokers trust, as `burrow.addons.cert_manager` makes them."""
    folder = tmp_path_factory.mktemp("federation-ca")
    root = CertificateAuthority.create(folder, "burrow-federation-root")
    return CertificateAuthority.create(folder, "burrow-federation", permitted=(ZONE, *CLUSTER_DOMAINS), parent=root)


@pytest.fixture(scope="module")
def cells(tmp_path_factory, environment_ca) -> Iterator[dict[str, RabbitMqNode]]:
    """Two federated brokers, one per region, each the other's upstream over TLS."""
    password = PASSWORD
    homes = {region: tmp_path_factory.mktemp(f"cell-{region}") for region in REGIONS}
    nodes = {}
    for region, home in homes.items():
        nodes[region], TLS_PORTS[region] = tls_node(home, environment_ca, [broker_host(region)])
    for region, other in (REGIONS, REGIONS[::-1]):
        definitions = rendered(region, other, password, TLS_PORTS[other], environment_ca.ca_file)
        (homes[region] / "load_definition.json").write_text(json.dumps(definitions))
    try:
        for node in nodes.values():
            node.start()
        for node in nodes.values():
            with connection(node) as conn:
                declare_topology(conn.channel(), settings(node))
        yield nodes
    finally:
        for node in nodes.values():
            node.stop()


def settings(node: RabbitMqNode):
    return load_settings({"RABBITMQ_HOST": "127.0.0.1", "RABBITMQ_PORT": str(node.amqp_port),
                          "RABBITMQ_USERNAME": USER, "RABBITMQ_PASSWORD": PASSWORD})


def connection(node: RabbitMqNode) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.ConnectionParameters(
        "127.0.0.1", node.amqp_port, credentials=pika.PlainCredentials(USER, PASSWORD), heartbeat=10))


def publish(node: RabbitMqNode, ids: list[str]) -> None:
    """Publish with confirms: every id returned from here was acknowledged by the broker."""
    with connection(node) as conn:
        channel = conn.channel()
        channel.confirm_delivery()
        for message_id in ids:
            channel.basic_publish(MESSAGING.exchange, MESSAGING.routing_key, message_id.encode(),
                                  pika.BasicProperties(message_id=message_id, delivery_mode=2), mandatory=True)


def consume(node: RabbitMqNode, limit: int | None, seconds: float, seen: list[str]) -> None:
    """Consume (and acknowledge) from the node's work queue until `limit` messages or `seconds` of
    silence; ids are appended to `seen`."""
    with connection(node) as conn:
        channel = conn.channel()
        channel.basic_qos(prefetch_count=20)
        for taken, (method, properties, _body) in enumerate(
                channel.consume(MESSAGING.queue, inactivity_timeout=seconds), start=1):
            if method is None:
                break
            seen.append(properties.message_id)
            channel.basic_ack(method.delivery_tag)
            if limit is not None and taken >= limit:
                break
        channel.cancel()


def dead_letters(node: RabbitMqNode) -> dict[str, str]:
    """The ids in the node's dead-letter queue, each with why it was dead-lettered (`x-death`'s
    reason and count: `delivery_limit` is a message delivered too often; before RabbitMQ 4.3 a
    quorum queue counts every return towards it, a closed link's or consumer's prefetch included)."""
    _exchange, queue = dead_letter_names(MESSAGING)
    found: dict[str, str] = {}
    with connection(node) as conn:
        channel = conn.channel()
        while True:
            method, properties, _body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                return found
            deaths = (properties.headers or {}).get("x-death") or [{}]
            found[properties.message_id] = f"{deaths[0].get('reason')} x{deaths[0].get('count')}"


def wait_for_link(node: RabbitMqNode, upstream: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    status = ""
    while time.monotonic() < deadline:
        status = node.ctl("eval", "rabbit_federation_status:status().")
        if upstream in status and "running" in status:
            return
        time.sleep(1)
    raise AssertionError(f"the federation link from {upstream} never ran: {status}")


def refused_as_federation_user(node: RabbitMqNode, act) -> bool:
    return refused(node.amqp_port, FEDERATION_USER, FEDERATION_PASSWORD, act)


def test_the_federation_user_reads_the_federated_queue_and_can_write_or_configure_nothing_else(cells):
    """Issue 25, finding 2: the links' login is no administrator, publishes nowhere, declares and
    deletes nothing (a purge of the work queue it reads stays possible: RabbitMQ counts it a read).
    The other tests of this module show the links still carry every message with these rights."""
    upstream = cells[REGIONS[0]]
    body, props = b"forged", pika.BasicProperties(delivery_mode=2)
    assert refused_as_federation_user(upstream, lambda ch: ch.basic_publish(
        MESSAGING.exchange, MESSAGING.routing_key, body, props))
    assert refused_as_federation_user(upstream, lambda ch: ch.basic_publish("", MESSAGING.queue, body, props))
    assert refused_as_federation_user(upstream, lambda ch: ch.queue_declare("federation-made", durable=True))
    assert refused_as_federation_user(upstream, lambda ch: ch.queue_delete(MESSAGING.queue))
    assert refused_as_federation_user(upstream, lambda ch: ch.exchange_declare("federation-made", "topic"))
    users = json.loads(upstream.ctl("list_users", "--formatter", "json"))
    assert {u["user"]: u["tags"] for u in users}[FEDERATION_USER] == []


def uri_of(parameter: dict) -> tuple[str, int | None, dict[str, list[str]]]:
    """(scheme, port, decoded query) of an upstream's URI."""
    uri = urlsplit(parameter["value"]["uri"])
    return uri.scheme, uri.port, parse_qs(uri.query, strict_parsing=True)


def test_the_rendered_links_dial_the_upstreams_tls_port_and_verify_its_certificate_and_name():
    """What a cluster's broker loads: `amqps` to the peer's TLS port (never the plain AMQP port),
    the peer's certificate checked against the CA the chart mounts, its name by SNI."""
    definitions = broker_definitions(USER, "{{ .password }}", {role: "x" for role in ROLES}, MESSAGING,
                                     federation_of(REGIONS[0], REGIONS[1]), "{{ .federation_password }}")
    [upstream] = definitions["parameters"]
    scheme, port, query = uri_of(upstream)
    assert (scheme, port) == ("amqps", AMQPS_PORT) and port != 5672
    assert query == {"cacertfile": [CA_FILE], "verify": ["verify_peer"],
                     "server_name_indication": [broker_host(REGIONS[1])]}
    assert upstream["value"]["uri"].startswith(f"amqps://{FEDERATION_USER}:{{{{ .federation_password }}}}@"
                                               f"{broker_host(REGIONS[1])}:5671/%2F?")
    # a CA path with characters that mean something in a query is percent-encoded (the client decodes it)
    odd = broker_definitions(USER, "p", {role: "x" for role in ROLES}, MESSAGING, federation_of(REGIONS[0], REGIONS[1]),
                             "f", ca_file="/tmp/a b&c=d.pem")
    assert uri_of(odd["parameters"][0])[2]["cacertfile"] == ["/tmp/a b&c=d.pem"]


def test_the_loaded_links_use_the_tls_listener_not_the_plain_port(cells):
    for region, other in (REGIONS, REGIONS[::-1]):
        loaded = json.loads(cells[region].ctl("list_parameters", "--formatter", "json"))
        [upstream] = [{**p, "value": json.loads(p["value"])} for p in loaded if p["component"] == "federation-upstream"]
        scheme, port, query = uri_of(upstream)
        assert (scheme, port) == ("amqps", TLS_PORTS[other]) and port != cells[other].amqp_port
        assert query["verify"] == ["verify_peer"] and query["server_name_indication"] == [broker_host(other)]


def link_states(node: RabbitMqNode) -> str:
    """Each link's upstream, status and error, as the federation plugin reports them."""
    return node.ctl("eval", "[{proplists:get_value(upstream, S), proplists:get_value(status, S), "
                            "proplists:get_value(error, S)} || S <- rabbit_federation_status:status()].")


def test_a_downstream_that_trusts_another_ca_or_dials_the_wrong_name_gets_no_link(cells, environment_ca,
                                                                               tmp_path_factory):
    """Verification is on: a third broker, with the environment's federation password, federates
    over TLS three times: from the first region trusting a CA of its own (`wrong-ca`); from the
    first region trusting the environment's CA but dialling it under a name its certificate does
    not carry (`wrong-name`); and from a listener whose certificate the environment's CA did sign,
    for a name outside the CA's name constraints (`outside-constraints`: the stranger's own, for
    `rabbitmq.outside.test`). No link runs, and no message crosses while a consumer waits there.
    (The constraints hold because they sit on an intermediate: Erlang skips a trust anchor's.)"""
    source = cells[REGIONS[0]]
    home = tmp_path_factory.mktemp("stranger")
    other_ca = CertificateAuthority.create(home / "ca", "another-ca")
    definitions = rendered("stranger", "wrong-ca", PASSWORD, TLS_PORTS[REGIONS[0]], other_ca.ca_file,
                           other_host=broker_host(REGIONS[0]))
    definitions["parameters"] += rendered("stranger", "wrong-name", PASSWORD, TLS_PORTS[REGIONS[0]],
                                          environment_ca.ca_file, other_host="rabbitmq.elsewhere.example.com")["parameters"]
    outside = "rabbitmq.outside.test"
    stranger, own_port = tls_node(home, environment_ca, [outside])
    definitions["parameters"] += rendered("stranger", "outside-constraints", PASSWORD, own_port,
                                          environment_ca.ca_file, other_host=outside)["parameters"]
    (home / "load_definition.json").write_text(json.dumps(definitions))
    try:
        stranger.start()
        with connection(stranger) as conn:
            declare_topology(conn.channel(), settings(stranger))
        deadline, states = time.monotonic() + 30, ""
        while time.monotonic() < deadline:
            states = link_states(stranger)
            if all(f'<<"{name}">>,error' in states for name in ("wrong-ca", "wrong-name", "outside-constraints")):
                break
            time.sleep(1)
        print(f"federation TLS: links of a downstream that must not verify: {' '.join(states.split())}")
        links = {name: error for name, error in re.findall(r'<<"([\w-]+)">>,error,(.*?)(?=\}, \{<<|\}\]$)', " ".join(states.split()))}
        assert set(links) == {"wrong-ca", "wrong-name", "outside-constraints"}, states
        # the downstream's own TLS client refused each upstream: an unknown CA, a name the certificate lacks
        assert "CLIENT ALERT" in links["wrong-ca"] and "unknown_ca" in links["wrong-ca"], states
        assert "CLIENT ALERT" in links["wrong-name"] and "hostname_check_failed" in links["wrong-name"], states
        # the CA's name constraints are enforced, not only accepted: its certificate for a name
        # outside them does not verify
        assert "CLIENT ALERT" in links["outside-constraints"], states
        assert "hostname_check_failed" not in links["outside-constraints"], states
        assert "running" not in states
        ids = [f"stray-{i}-{uuid.uuid4().hex[:6]}" for i in range(20)]
        publish(source, ids)
        crossed: list[str] = []
        consume(stranger, None, 6, crossed)
        left_upstream: list[str] = []
        consume(source, None, 3, left_upstream)  # they stayed in the upstream region, every one
        print(f"federation TLS: published {len(ids)} upstream, {len(crossed)} crossed, {len(left_upstream)} stayed")
        assert crossed == []
        assert sorted(left_upstream) == sorted(ids)
    finally:
        stranger.stop()


def test_a_message_published_in_one_region_is_consumed_in_the_other(cells):
    source, target = cells[REGIONS[0]], cells[REGIONS[1]]
    wait_for_link(target, REGIONS[0])
    ids = [f"cross-{i}-{uuid.uuid4().hex[:6]}" for i in range(50)]
    publish(source, ids)
    seen: list[str] = []
    consume(target, len(ids), 20, seen)
    print(f"federation: published {len(ids)} in {REGIONS[0]}, consumed {len(seen)} in {REGIONS[1]}")
    assert sorted(seen) == sorted(ids)


def test_stopping_and_restarting_the_downstream_broker_loses_nothing_acknowledged(cells):
    source, target = cells[REGIONS[0]], cells[REGIONS[1]]
    wait_for_link(target, REGIONS[0])
    before = [f"before-{i}-{uuid.uuid4().hex[:6]}" for i in range(400)]
    publish(source, before)  # acknowledged by the upstream region's broker
    seen: list[str] = []
    consume(target, 150, 20, seen)  # the downstream region drains part of it
    target.halt()  # the downstream region's broker stops, with messages moved to it in flight or queued
    during = [f"during-{i}-{uuid.uuid4().hex[:6]}" for i in range(200)]
    publish(source, during)  # acknowledged while the downstream region is down
    target.start()
    time.sleep(8)
    links_alone = target.ctl("eval", "length(rabbit_federation_status:status()).").strip()
    keeper = start_keeper(target, REGIONS[1], REGIONS[0])  # as the sidecar beside every broker does
    try:
        wait_for_link(target, REGIONS[0])
        acknowledged = set(before) | set(during)
        deadline = time.monotonic() + 120
        while not acknowledged <= set(seen) and time.monotonic() < deadline:
            consume(target, None, 10, seen)  # the rest, through the link the keeper restarted
    finally:
        os.killpg(keeper.pid, signal.SIGTERM)
        said = keeper.communicate(timeout=30)[0]
    print(f"federation links 8 s after the restart, before the keeper: {links_alone}; keeper said: {said.strip()!r}")
    left_upstream: list[str] = []
    consume(source, None, 3, left_upstream)  # nothing may be stranded either: take what stayed upstream
    received = set(seen) | set(left_upstream)
    lost = acknowledged - received
    duplicates = len(seen) + len(left_upstream) - len(received)
    print(f"federation fault: acknowledged {len(acknowledged)}, consumed {len(seen)} downstream and "
          f"{len(left_upstream)} upstream, lost {len(lost)}, duplicates {duplicates}")
    if lost:  # where they are: held by a link (unacknowledged) or dead-lettered, on which side
        queues = {name: node.ctl("list_queues", "name", "messages_ready", "messages_unacknowledged", "-q")
                  for name, node in (("upstream", source), ("downstream", target))}
        links = target.ctl("eval", "rabbit_federation_status:status().")
        dead = {side: {i: why for i, why in dead_letters(node).items() if i in lost}
                for side, node in (("upstream", source), ("downstream", target))}
        raise AssertionError(f"lost {sorted(lost)[:10]}; dead-lettered among them {dead}; queues {queues}; links {links}")
    assert received <= acknowledged
    assert acknowledged <= set(seen), "the downstream region did not drain the upstream after its restart"
    # RabbitMQ does not restart the quorum queue's link by itself (none 8 s after the restart): the
    # keeper restored it, and said so.
    assert links_alone == "0", f"{links_alone} links came back without the keeper: the keeper went untested"
    assert "re-applied policy burrow-federation" in said, said
