"""Broker users by role in the synthesized stacks (issue 25, finding 2): no workload is given the
administrator's login, each gets its own role's, and the definitions the brokers load are the
ones `broker_definitions` builds (the function the real-broker test loads:
tests/apps/test_broker_users.py)."""

from __future__ import annotations

import json
import re

import pytest

from burrow.app.broker_users import ROLES, broker_definitions, password_field
from burrow.config.schema import MessagingConfig
from burrow.k8s.release import release_values
from tests.conftest import ENVIRONMENTS

CLOUD = tuple(env for env in ENVIRONMENTS if env != "dev")


def objects(synthesized, env: str, kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in synthesized.objects(env) if o["kind"] == kind}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_workload_logs_in_as_its_own_role_and_none_as_the_administrator(synthesized, env):
    for role, deployment in objects(synthesized, env, "Deployment").items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        secrets = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
        assert secrets["RABBITMQ_USERNAME"] == secrets["RABBITMQ_PASSWORD"] == f"rabbitmq-{role}", role
        assert "rabbitmq-auth" not in secrets.values(), role
        plain = {e["name"]: e.get("value") for e in container["env"]}
        assert plain["RABBITMQ_TOPOLOGY"] == "passive", role  # no configure right: only check the topology
    if env == "dev":  # Terraform writes KEDA's Secret
        app = synthesized.stack("dev-app")["resource"]["kubernetes_secret_v1"]
        [scaler] = [s for s in app.values() if s["metadata"]["name"] == "burrow-dev-rabbitmq"]
        assert scaler["data"]["host"].startswith(
            "amqp://burrow-monitoring:${random_password.rabbitmq_monitoring-password"
        )
        return
    scaler = objects(synthesized, env, "ExternalSecret")[f"burrow-{env}-rabbitmq"]  # KEDA's, in its namespace
    assert scaler["spec"]["dataFrom"] == [{"extract": {"key": f"burrow/{env}/broker-monitoring"}}]
    assert scaler["spec"]["target"]["template"]["data"]["host"].startswith("amqp://burrow-monitoring:")


@pytest.mark.parametrize("env", CLOUD)
def test_the_brokers_load_the_definitions_broker_definitions_builds(synthesized, env):
    """In every region: the definitions are `broker_definitions` with the External Secrets templates,
    each template reads its own role's secret, and the chart loads them."""
    built = next(b for b in synthesized.built if b.env.name == env)
    for app in built.apps:
        prefix, broker = app.env.stack_prefix, app.broker
        secrets = {o["metadata"]["name"]: o for o in synthesized.objects(env, prefix) if o["kind"] == "ExternalSecret"}
        secret = secrets["rabbitmq-definitions"]
        loaded = json.loads(secret["spec"]["target"]["template"]["data"]["load_definition.json"])
        expected = broker_definitions(
            app.env.rabbitmq.username,
            "{{ .password }}",
            {role: "{{ ." + password_field(role) + " }}" for role in ROLES},
            app.env.messaging,
            broker.props.federation,
            "{{ ." + password_field("federation") + " }}",
        )
        assert loaded == expected, prefix
        renamed = {
            s["extract"]["key"]: s.get("rewrite", [{}])[0].get("regexp", {}).get("target")
            for s in secret["spec"]["dataFrom"]
        }
        assert {key: renamed[key] for key in renamed if "broker-" in key} == {
            f"burrow/{env}/broker-{role}": password_field(role) for role in ROLES
        }, prefix
        values = release_values(broker.release)
        assert values["loadDefinition"]["existingSecret"] == "rabbitmq-definitions"
        # several brokers: the chart sets the cluster size hint (clustering on), and RabbitMQ imports the
        # quorum queues only once every broker has joined (else the first to boot would be their only member)
        assert values["replicaCount"] == 1 or values["clustering"]["enabled"] is True, prefix


def test_terraform_generated_credentials_give_each_role_its_own_user_too(synthesized):
    """dev: Terraform's passwords (its state holds them, as before) in the same definitions."""
    app = synthesized.stack("dev-app")
    secrets = {s["metadata"]["name"]: s for s in app["resource"]["kubernetes_secret_v1"].values()}
    # Terraform's references, without the hash cdktf appends to resource names
    text = re.sub(r"_[0-9A-F]{8}\.result", ".result", secrets["rabbitmq-definitions"]["data"]["load_definition.json"])
    expected = broker_definitions(
        "burrow",
        "${random_password.rabbitmq_password.result}",
        {role: f"${{random_password.rabbitmq_{role}-password.result}}" for role in ROLES},
        MessagingConfig(),
    )
    assert json.loads(text) == expected
    assert set(secrets["rabbitmq-auth"]["data"]) == {"rabbitmq-password", "rabbitmq-erlang-cookie"}
    broker = next(r for r in app["resource"]["helm_release"].values() if r["name"] == "rabbitmq")
    assert "kubernetes_secret_v1.rabbitmq_definitions_" in " ".join(broker["depends_on"])


def test_a_broker_and_its_workers_must_agree_on_the_topology_it_declares():
    """Props errors, before anything is generated: a broker with Secrets Manager credentials needs
    each role's secret; a worker may not name an exchange or queue its broker does not declare."""
    from burrow import Image, PropsError, QueueWorker, QueueWorkerProps, RabbitMqBroker, RabbitMqBrokerProps
    from tests.support.team import SIZE as size
    from tests.support.team import team_namespace

    stack, ns = team_namespace()
    image = Image(registry="r", repository="rabbitmq", tag="4")
    with pytest.raises(PropsError, match=r"team/bad: user_keys=\[\] is invalid.*producer, consumer, monitoring"):
        RabbitMqBroker(
            stack,
            "bad",
            namespace=ns,
            props=RabbitMqBrokerProps(image=image, resources=size, credentials_key="team/rabbitmq"),
        )
    broker = RabbitMqBroker(stack, "mq", namespace=ns, props=RabbitMqBrokerProps(image=image, resources=size))
    elsewhere = MessagingConfig(queue="other.work")
    with pytest.raises(PropsError, match=r"team/consumer: messaging=.*other\.work.*use the same"):
        QueueWorker(
            stack,
            "consumer",
            namespace=ns,
            broker=broker,
            props=QueueWorkerProps(role="consumer", image=image, resources=size, messaging=elsewhere),
        )
    # a worker of a team's own role gets no login from a broker that has users by role
    with pytest.raises(PropsError, match=r"team/intake: role='intake' is invalid: this broker gives logins only to "
                                         r"the roles producer, consumer \(users_by_role\)"):
        QueueWorker(stack, "intake", namespace=ns, broker=broker,
                    props=QueueWorkerProps(role="intake", image=image, resources=size, messaging=MessagingConfig()))


@pytest.mark.parametrize("env", CLOUD)
def test_the_administrators_secret_keeps_the_username_key_through_the_upgrade(synthesized, env):
    """A client pod started from the previous release's template (before the broker has rolled)
    reads `rabbitmq-username` and `rabbitmq-password` from `rabbitmq-auth`: both keys stay, the
    username is not secret, and no client-facing URI with the password is written there."""
    admin = objects(synthesized, env, "ExternalSecret")["rabbitmq-auth"]
    data = admin["spec"]["target"]["template"]["data"]
    assert sorted(data) == ["rabbitmq-erlang-cookie", "rabbitmq-password", "rabbitmq-username"]
    assert data["rabbitmq-username"] == "burrow"
