"""The broker's users by role, and the definitions every broker loads at boot.

A broker whose credentials come from Secrets Manager (`RabbitMqBroker`'s `credentials_key`) has
one user per role, each with its own generated password in a secret of its own:

- `burrow-producer`: writes to the work exchange, nothing else (no configure, no read: it can
  neither declare, delete, purge nor consume);
- `burrow-consumer`: reads the work queue (consume, acknowledge, reject), nothing else (it cannot
  publish, not even to the default exchange);
- `burrow-monitoring`: tag `monitoring`, no configure, write or read on any resource: KEDA's
  RabbitMQ scaler (2.20, `protocol: amqp`) asks for the queue's depth with a passive
  `queue.declare`, which RabbitMQ answers for any user with access to the virtual host; the
  management API's read-only views (`monitoring`) serve the same numbers over HTTP. The brokers'
  Prometheus endpoint takes no login at all;
- the federation user (`burrow.app.federation`), when the broker federates;
- the administrator (the chart's `auth.username`), whose password no workload is given;
- one user per tenant (a `Team`'s, `burrow.app.tenants`): `team-<name>`, with every right on a
  virtual host of its own (`<name>`) and none on `/` or any other tenant's; the administrator may
  act there too, and the monitoring user may ask for its queues' depth (KEDA).

Since no workload may configure anything, the broker declares the services' topology itself from
the same definitions: the work exchange, the quorum work queue with its dead-letter exchange and
queue, and their bindings, exactly as `burrow_service.messaging.declare_topology` declares them
(the test on a real broker declares them actively on top of the definitions: any difference is a
`PRECONDITION_FAILED`). The services then only check that it exists (`RABBITMQ_TOPOLOGY=passive`).

`broker_definitions` is pure: the tests load exactly what a cluster loads, with real passwords in
place of the External Secrets templates.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Literal

from burrow.addons.external_secrets import API_VERSION, store_for
from burrow.app import federation as fed
from burrow.app.settings import MessagingConfig
from burrow.k8s import objects as k8s
from burrow.k8s.objects import MANAGED_BY

Role = Literal["producer", "consumer", "monitoring"]
ROLES: tuple[Role, ...] = ("producer", "consumer", "monitoring")
VHOST = "/"
#: Deliveries before a message is dead-lettered (the services' `DELIVERY_LIMIT`).
DELIVERY_LIMIT = 5
NOTHING = "^$"  # a permission pattern that matches no resource name Burrow uses
#: The Secret the brokers load their definitions from.
DEFINITIONS_SECRET = "rabbitmq-definitions"


def secret_key(role: Role) -> str:
    """The generated secret (`<prefix>/<key>`, JSON field `password`) of a role's user."""
    return f"broker-{role}"


def user_name(role: Role) -> str:
    """The broker user of a role."""
    return f"burrow-{role}"


def password_field(role: str) -> str:
    """The field a role's (or a tenant's, `tenant_field`) password is renamed to in the definitions'
    ExternalSecret: a Go template field name, so letters, digits and `_` only."""
    return f"{role}_password"


def tenant_user(tenant: str) -> str:
    """The broker user of a tenant (a team)."""
    return f"team-{tenant}"


def tenant_vhost(tenant: str) -> str:
    """The virtual host of a tenant: its name (a DNS label, so never `/`)."""
    return tenant


def tenant_field(tenant: str) -> str:
    """A tenant's name as a template field (`-` becomes `_`: a DNS label has no `_`, so no two collide)."""
    return "tenant_" + tenant.replace("-", "_")


def tenant_definitions(
    admin: str, tenants: Mapping[str, str], limits: Mapping[str, Mapping[str, int]] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Each tenant's virtual host, its user (`tenants`: name -> password or template) with every right
    there, and the administrator's and the monitoring user's permissions there (the monitoring user's
    only lets KEDA ask for a queue's depth, as on `/`); `limits` (name -> `max-connections`,
    `max-queues`) become each virtual host's limits, so one team cannot take the shared broker's
    memory (whose alarm blocks every publisher, Burrow's included) with queues or connections."""
    everything = {"configure": ".*", "write": ".*", "read": ".*"}
    nothing = {"configure": NOTHING, "write": NOTHING, "read": NOTHING}
    limits = limits or {}
    parameters = [{"vhost": tenant_vhost(name), "component": "vhost-limits", "name": "limits", "value": dict(limits[name])}
                  for name in tenants if limits.get(name)]
    return {
        **({"parameters": parameters} if parameters else {}),
        "users": [{"name": tenant_user(name), "password": password, "tags": ""} for name, password in tenants.items()],
        "vhosts": [{"name": tenant_vhost(name)} for name in tenants],
        "permissions": [
            {"user": user, "vhost": tenant_vhost(name), **rights}
            for name in tenants
            for user, rights in (
                (tenant_user(name), everything),
                (admin, everything),
                (user_name("monitoring"), nothing),
            )
        ],
    }


def exactly(name: str) -> str:
    """A permission pattern matching one resource name."""
    return "^" + name.replace(".", "\\.") + "$"


def dead_letter_names(messaging: MessagingConfig) -> tuple[str, str]:
    """(exchange, queue) of the work queue's dead letters, named as the services name them."""
    return f"{messaging.queue}.dlx", f"{messaging.queue}.dead"


def role_permissions(role: Role, messaging: MessagingConfig) -> dict[str, str]:
    """One role's permission entry on the virtual host."""
    write = exactly(messaging.exchange) if role == "producer" else NOTHING
    read = exactly(messaging.queue) if role == "consumer" else NOTHING
    return {"user": user_name(role), "vhost": VHOST, "configure": NOTHING, "write": write, "read": read}


def topology(messaging: MessagingConfig) -> dict[str, list[dict[str, Any]]]:
    """The services' exchanges, queues and bindings, as definitions."""
    dlx, dead = dead_letter_names(messaging)

    def exchange(name: str, kind: str) -> dict[str, Any]:
        return {
            "name": name,
            "vhost": VHOST,
            "type": kind,
            "durable": True,
            "auto_delete": False,
            "internal": False,
            "arguments": {},
        }

    def queue(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": name,
            "vhost": VHOST,
            "durable": True,
            "auto_delete": False,
            "arguments": {"x-queue-type": "quorum", **arguments},
        }

    def binding(source: str, destination: str, key: str) -> dict[str, Any]:
        return {
            "source": source,
            "vhost": VHOST,
            "destination": destination,
            "destination_type": "queue",
            "routing_key": key,
            "arguments": {},
        }

    return {
        "exchanges": [exchange(messaging.exchange, "direct"), exchange(dlx, "fanout")],
        "queues": [
            queue(dead, {}),
            queue(messaging.queue, {"x-dead-letter-exchange": dlx, "x-delivery-limit": DELIVERY_LIMIT}),
        ],
        # pika binds with the queue's name when no routing key is given: the dead-letter binding's key
        "bindings": [binding(dlx, dead, dead), binding(messaging.exchange, messaging.queue, messaging.routing_key)],
    }


def broker_definitions(
    admin: str,
    admin_password: str,
    passwords: Mapping[Role, str],
    messaging: MessagingConfig,
    federation: fed.BrokerFederation | None = None,
    federation_password: str = "",
    host_of: Callable[[fed.FederationUpstream], str] | None = None,
    ca_file: str = fed.CA_FILE,
    tenants: Mapping[str, str] | None = None,
    tenant_limits: Mapping[str, Mapping[str, int]] | None = None,
) -> dict[str, Any]:
    """Everything a broker loads at boot: its users and their permissions, the virtual host, the
    topology, federated, the upstreams and policy (`host_of`, `ca_file`: see `federation_definitions`) and the
    tenants' virtual hosts, users and limits (`tenants`: name -> password, `tenant_limits`: see
    `tenant_definitions`).
    Passwords are the values, or the External Secrets templates that become them."""
    users = [
        {"name": admin, "password": admin_password, "tags": "administrator"},
        *(
            {"name": user_name(role), "password": passwords[role], "tags": "monitoring" if role == "monitoring" else ""}
            for role in ROLES
        ),
    ]
    permissions = [
        {"user": admin, "vhost": VHOST, "configure": ".*", "write": ".*", "read": ".*"},
        *(role_permissions(role, messaging) for role in ROLES),
    ]
    definitions: dict[str, Any] = {
        "users": users,
        "vhosts": [{"name": VHOST}],
        "permissions": permissions,
        **topology(messaging),
    }
    if federation is not None:
        links = fed.federation_definitions(federation, messaging, federation_password, host_of, ca_file)
        definitions["users"].append(links["user"])
        definitions["permissions"].append(links["permissions"])
        definitions.update(parameters=links["parameters"], policies=links["policies"])
    for kind, entries in tenant_definitions(admin, tenants or {}, tenant_limits).items():
        definitions[kind] = definitions.get(kind, []) + entries
    return definitions


def definitions_secret(
    namespace: str,
    admin: str,
    messaging: MessagingConfig,
    credentials_key: str,
    user_keys: Mapping[Role, str],
    federation: fed.BrokerFederation | None,
    tenant_keys: Mapping[str, str] | None = None,
    tenant_limits: Mapping[str, Mapping[str, int]] | None = None,
) -> k8s.K8sObject:
    """The ExternalSecret that renders the definitions into the Secret the chart loads them from.
    Every password comes from this region's store (each role's and tenant's secret's `password`
    renamed so they do not collide; `tenant_keys`: tenant -> its secret), so the Secret exists as
    soon as this region's own stacks do."""
    templates = {role: "{{ ." + password_field(role) + " }}" for role in ROLES}
    tenant_keys = tenant_keys or {}
    tenants = {name: "{{ ." + password_field(tenant_field(name)) + " }}" for name in tenant_keys}
    definitions = broker_definitions(
        admin,
        "{{ .password }}",
        templates,
        messaging,
        federation,
        "{{ ." + password_field("federation") + " }}",
        tenants=tenants,
        tenant_limits=tenant_limits,
    )
    renamed = dict(user_keys)
    if federation is not None:
        renamed["federation"] = federation.federation_key
    renamed.update({tenant_field(name): key for name, key in tenant_keys.items()})
    sources: list[dict[str, Any]] = [
        {"extract": {"key": credentials_key}},
        *(
            {"extract": {"key": key}, "rewrite": [{"regexp": {"source": "^password$", "target": password_field(role)}}]}
            for role, key in renamed.items()
        ),
    ]
    return {
        "apiVersion": API_VERSION,
        "kind": "ExternalSecret",
        "metadata": k8s.metadata(DEFINITIONS_SECRET, namespace, MANAGED_BY),
        "spec": {
            "refreshInterval": "1h",
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": store_for(namespace)},
            "target": {
                "name": DEFINITIONS_SECRET,
                "creationPolicy": "Owner",
                "template": {"type": "Opaque", "data": {fed.DEFINITIONS_FILE: json.dumps(definitions, indent=1)}},
            },
            "dataFrom": sources,
        },
    }


def chart_values(secret: str = DEFINITIONS_SECRET) -> dict[str, Any]:
    """The Bitnami chart's settings for a broker that loads its definitions at boot (from `secret`,
    key `load_definition.json`). With clustering
    on, the chart also sets `cluster_formation.target_cluster_size_hint` to the replica count, and
    RabbitMQ (3.10 and later) imports queues and bindings only once that many brokers have joined:
    the quorum queues get a member on every broker, not only on the first to boot."""
    return {
        "loadDefinition": {
            "enabled": True,
            "existingSecret": secret,
            "file": f"/app/{fed.DEFINITIONS_FILE}",
        }
    }
