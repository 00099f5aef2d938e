"""Another team's stack built from Burrow's constructs, for tests of what such a team gets."""

from __future__ import annotations

import json
from pathlib import Path

from cdktf import App, TerraformStack

from burrow import (
    AppNamespace,
    Guardrails,
    Image,
    KubeconfigCluster,
    QueueWorker,
    QueueWorkerProps,
    RabbitMqBroker,
    RabbitMqBrokerProps,
    Resources,
    Tier,
)
from burrow.config.schema import MessagingConfig

CLUSTER = KubeconfigCluster(kubeconfig_path="~/.kube/config", context="test", version="1.33")
SIZE = Resources.model_validate(
    {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
)


def team_namespace() -> tuple[TerraformStack, AppNamespace]:
    """Stack `team` on the test cluster with namespace `team` and nothing else yet."""
    stack = TerraformStack(App(), "team")
    CLUSTER.configure_providers(stack)
    return stack, AppNamespace(stack, "ns", {"name": "team"})


def team_stack(outdir: Path, tier: Tier | None, default_deny: bool = True) -> tuple[App, QueueWorker]:
    """Stack `team`: namespace, broker and a consumer; `tier` None keeps the guardrails' default."""
    app = App(outdir=str(outdir))
    stack = TerraformStack(app, "team")
    CLUSTER.configure_providers(stack)
    if tier is not None:
        Guardrails.configure(stack, tier)
    namespace = AppNamespace(stack, "ns", {"name": "team", "default_deny": default_deny})
    broker = RabbitMqBroker(
        stack,
        "mq",
        namespace=namespace,
        props=RabbitMqBrokerProps(image=Image(registry="r", repository="rabbitmq", tag="4"), resources=SIZE,
                                  users_by_role=False),
    )
    worker = QueueWorker(
        stack,
        "worker",
        namespace=namespace,
        broker=broker,
        props=QueueWorkerProps(
            name="consumer",
            role="consumer",
            image=Image(registry="r", repository="w", tag="1"),
            resources=SIZE,
            messaging=MessagingConfig(exchange="team.events", queue="team.work", routing_key="work"),
        ),
    )
    return app, worker


#: The two teams of `tenant_stack`, each with one worker on queues of its own.
TEAMS = {"orders": ("orders", "orders.intake", "intake"), "billing": ("billing", "billing.invoices", "invoice")}
#: The virtual host limits each team asks for (billing takes the default `TenantLimits()`).
LIMITS = {"orders": {"max_queues": 3, "max_connections": 4}}


def tenant_stack(outdir: Path, credentials_key: str | None = None) -> dict:
    """Stack `platform`: Burrow's broker in namespace `messaging` (a user per role) and the teams of
    `TEAMS` on it, each with a worker of its own; synthesized into `outdir`, returned as parsed JSON.
    `credentials_key`: the broker's passwords and the teams' come from Secrets Manager."""
    from burrow import Team

    app = App(outdir=str(outdir))
    stack = TerraformStack(app, "platform")
    CLUSTER.configure_providers(stack)
    Guardrails.configure(stack, Tier.DEVELOPMENT)
    namespace = AppNamespace(stack, "ns", {"name": "messaging"})
    secrets = {}
    if credentials_key:
        secrets = {"credentials_key": credentials_key,
                   "user_keys": {role: f"{credentials_key}-{role}" for role in ("producer", "consumer", "monitoring")}}
    broker = RabbitMqBroker(stack, "mq", namespace=namespace, props={
        "image": {"registry": "r", "repository": "rabbitmq", "tag": "4"}, "resources": SIZE, **secrets})
    for name, (exchange, queue, key) in TEAMS.items():
        team = Team(stack, name, {"name": name, "groups": [f"{name}-developers"],
                                  "password_key": f"teams/{name}" if credentials_key else None,
                                  **({"broker_limits": LIMITS[name]} if name in LIMITS else {})}, broker=broker)
        team.worker(f"{name}-worker", {"image": {"registry": "ghcr.io", "repository": f"{name}/worker", "tag": "1"},
                                        "resources": SIZE,
                                        "messaging": {"exchange": exchange, "queue": queue, "routing_key": key}})
    app.synth()
    return json.loads((outdir / "stacks" / "platform" / "cdk.tf.json").read_text())
