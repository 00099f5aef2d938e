"""`Team`: a team's own corner of a cluster and of a shared broker, as EKS Blueprints' teams are.

A team gets a namespace (Pod Security `restricted`, default-deny NetworkPolicies, a ResourceQuota
and a LimitRange: `AppNamespace`), a Role for its people's group(s), and a user of its own on a
`RabbitMqBroker` with every right on a virtual host of its own and none elsewhere
(`RabbitMqBroker.add_tenant`). Its workers (`Team.worker`) log in as that user.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from cdktf import ITerraformDependable
from pydantic import AfterValidator, Field, field_validator

from burrow.app.namespace import AppNamespace, AppNamespaceProps, fits_its_release_name
from burrow.app.rabbitmq import BrokerTenant, RabbitMqBroker
from burrow.app.settings import NamespaceQuota
from burrow.app.worker import QueueWorker, QueueWorkerProps
from burrow.k8s import objects as k8s
from burrow.k8s.objects import MANAGED_BY
from burrow.k8s.release import NAMESPACE_NAME, KubernetesObjects
from burrow.props import Props, child_path, props_for, reference
from constructs import Construct

RBAC = "rbac.authorization.k8s.io"
READ = ["get", "list", "watch"]
#: What a team's people may do in its namespace. Reading covers what they need to follow their
#: workers (pods and their logs, events, Deployments, autoscalers, policies, the ExternalSecrets'
#: status); they may delete a pod (its Deployment replaces it) and port-forward to one. Not
#: Secrets, not `pods/exec` or `attach`: the only Secrets here are machine logins (the team's
#: broker password among them), which a container's environment holds too; and no writes to what
#: Terraform delivers, which the next apply would undo.
DEVELOPER_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": [""],
        "resources": [
            "pods",
            "pods/log",
            "events",
            "services",
            "endpoints",
            "configmaps",
            "serviceaccounts",
            "persistentvolumeclaims",
            "resourcequotas",
            "limitranges",
        ],
        "verbs": READ,
    },
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]},
    {"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["create"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "replicasets", "statefulsets"], "verbs": READ},
    {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": READ},
    {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": READ},
    {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"], "verbs": READ},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies", "ingresses"], "verbs": READ},
    {"apiGroups": ["keda.sh"], "resources": ["scaledobjects"], "verbs": READ},
    {"apiGroups": ["monitoring.coreos.com"], "resources": ["servicemonitors", "prometheusrules"], "verbs": READ},
    {"apiGroups": ["external-secrets.io"], "resources": ["externalsecrets"], "verbs": READ},
]
#: A Kubernetes group name as identity providers send them (EKS access entries, OIDC claims).
GROUP = r"^[A-Za-z0-9][-A-Za-z0-9_.:@/]{0,252}$"


def not_a_system_group(group: str) -> str:
    """Kubernetes' own `system:` groups (every authenticated identity, every service account) are
    refused: binding a team's Role to one would give it to the whole cluster."""
    if group.startswith("system:"):
        raise ValueError("a group of the team's people, not one of Kubernetes' own system: groups")
    return group


class TenantLimits(Props):
    """What a team may hold on a shared broker: its virtual host's limits. A broker's memory and disk
    alarms block publishers on every virtual host, so one team's runaway queues or connections
    would stop every other team's and Burrow's own publishing; the limits keep that within bounds."""

    #: Connections open at once on the team's virtual host. default: 100
    max_connections: int = Field(default=100, ge=1, le=100_000)
    #: Queues on the team's virtual host. default: 100
    max_queues: int = Field(default=100, ge=1, le=100_000)

    def vhost_limits(self) -> dict[str, int]:
        """As RabbitMQ names them (`rabbitmqctl set_vhost_limits`)."""
        return {"max-connections": self.max_connections, "max-queues": self.max_queues}


class TeamProps(Props):
    """Props of `Team`. Required: `name` and `groups`."""

    #: The team's name: its namespace's, its broker virtual host's and (as `team-<name>`) its broker
    #: user's. A DNS label of at most 36 characters (see `AppNamespaceProps.name`).
    name: str = Field(pattern=NAMESPACE_NAME)
    #: The Kubernetes groups of the team's people, bound to the team's Role in its namespace
    #: (`DEVELOPER_RULES`: read, delete pods, port-forward; no Secrets, no exec).
    groups: tuple[Annotated[str, Field(pattern=GROUP), AfterValidator(not_a_system_group)], ...] = Field(min_length=1)
    #: The namespace's ResourceQuota and the LimitRange defaulting every container. default:
    #: `NamespaceQuota()` (2 CPUs and 4Gi requested, 4 CPUs and 8Gi limits, 20 pods, no volumes)
    quota: NamespaceQuota = NamespaceQuota()
    #: Labels added to the namespace's own. default: none
    labels: dict[str, str] = Field(default_factory=dict)
    #: The Secrets Manager secret (JSON field `password`) of the team's broker user, required when the
    #: broker's credentials come from Secrets Manager (its `credentials_key`); the cluster's
    #: `GeneratedCredentials` generates it and lets the broker's and the team's namespaces read it.
    #: default: none (the broker's passwords are Terraform's, and so is the team's)
    password_key: str | None = Field(default=None, min_length=1)
    #: The team's virtual host's limits on the broker. default: `TenantLimits()` (100 connections,
    #: 100 queues)
    broker_limits: TenantLimits = TenantLimits()

    @field_validator("name")
    @classmethod
    def _fits_its_release_name(cls, name: str) -> str:
        return fits_its_release_name(name)


class Team(Construct):
    """A team's namespace, its people's Role, and its user on `broker` (`tenant`).

    `props` is a `TeamProps` or a mapping of its fields (validated here, so a mistake names this
    construct's path). Escape hatches: `namespace` (the `AppNamespace`), `access` (the
    `KubernetesObjects` of the Role and RoleBinding; `access.objects`), `tenant` (the `BrokerTenant`).
    """

    def __init__(
        self, scope: Construct, id: str, props: TeamProps | Mapping[str, Any], *, broker: RabbitMqBroker
    ) -> None:
        path = child_path(scope, id)
        broker = reference(path, "broker", broker, RabbitMqBroker)
        props = props_for(path, TeamProps, props)
        broker.check_tenant(path, scope, props.name, props.password_key)
        super().__init__(scope, id)
        self.props = props
        self.name = props.name
        self.namespace = AppNamespace(
            self,
            "namespace",
            AppNamespaceProps(
                name=props.name, quota=props.quota, labels={**props.labels, "burrow.dev/team": props.name}
            ),
        )
        name = f"{props.name}-developers"
        labels = {**MANAGED_BY, "burrow.dev/team": props.name}
        self.access = KubernetesObjects(
            self,
            "access",
            {
                "release_name": f"{props.name}-team-access",
                "namespace": props.name,
                "objects": [
                    {
                        "apiVersion": f"{RBAC}/v1",
                        "kind": "Role",
                        "metadata": k8s.metadata(name, props.name, labels),
                        "rules": DEVELOPER_RULES,
                    },
                    {
                        "apiVersion": f"{RBAC}/v1",
                        "kind": "RoleBinding",
                        "metadata": k8s.metadata(name, props.name, labels),
                        "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": name},
                        "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": group} for group in props.groups],
                    },
                ],
            },
            depends_on=[self.namespace.resource],
        )
        self.tenant: BrokerTenant = broker.add_tenant(
            self, name=props.name, namespace=self.namespace, password_key=props.password_key,
            limits=props.broker_limits.vhost_limits(),
        )

    def worker(
        self, id: str, props: QueueWorkerProps | Mapping[str, Any], depends_on: Sequence[ITerraformDependable] = ()
    ) -> QueueWorker:
        """A `QueueWorker` of the team's (under this construct): in its namespace, on its broker, logged
        in as its user on its virtual host, declaring its own exchanges and queues there."""
        return QueueWorker(
            self,
            id,
            namespace=self.namespace,
            broker=self.tenant.broker,
            props=props,
            depends_on=depends_on,
            tenant=self.tenant,
        )
