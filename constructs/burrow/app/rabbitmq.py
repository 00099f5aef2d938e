"""`RabbitMqBroker`: RabbitMQ from the Bitnami Helm chart, with generated credentials.

The administrator's password and the Erlang cookie live in the Secret the chart reads (its
existing-secret settings); each client role has a user and a Secret of its own, and the brokers
load their users, permissions and the services' topology from definitions at boot
(`burrow.app.broker_users`). With `credentials_key` set (Burrow's cloud environments) the
Secrets are built by External Secrets from secrets in AWS Secrets Manager, so the values never
pass through Terraform; without it, Terraform generates them (`random_password`) and they live in
its state. With `generate_credentials_in_cluster` (previews) External Secrets generates every
password in the cluster, once: the Erlang cookie into a Secret of its own, and the administrator's
password, each role's login and the definitions into a logins Secret named after its template
(`login_secret`; one ExternalSecret fills one Secret, so the clients read their own role's keys of
it; none is given the administrator's). The synthesized JSON and the values files only ever hold
references.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any
from urllib.parse import quote

from cdktf import ITerraformDependable, TerraformStack
from cdktf_cdktf_provider_helm.release import Release
from cdktf_cdktf_provider_kubernetes.secret_v1 import SecretV1, SecretV1Metadata
from cdktf_cdktf_provider_random.password import Password
from cdktf_cdktf_provider_random.provider import RandomProvider
from pydantic import Field

from burrow.addons import keda
from burrow.addons import kinds as k
from burrow.addons.external_secrets import external_secret, generated_secret, password_generator
from burrow.app import broker_users as users
from burrow.app import federation as fed
from burrow.app.namespace import AppNamespace
from burrow.app.settings import MessagingConfig, RabbitMqConfig
from burrow.errors import PropsError
from burrow.k8s import objects as k8s
from burrow.k8s.objects import MANAGED_BY, EnvFromSecret
from burrow.k8s.release import DeliversObjects, KubernetesObjects, release_values, to_yaml
from burrow.monitoring.rules import broker_alerts, prometheus_rule
from burrow.policy.facts import PolicyFacts
from burrow.policy.guardrails import Guardrails
from burrow.props import Props, child_path, props_for, reference
from burrow.scope import stack_singleton
from burrow.spi import ClusterInfo
from constructs import Construct

AMQP_PORT = 5672
AMQPS_PORT = fed.AMQPS_PORT
METRICS_PORT = 9419
CLUSTER_PORTS = (4369, 25672)  # epmd and Erlang distribution between broker pods
KEDA_OPERATOR = {"app.kubernetes.io/name": "keda-operator"}  # the KEDA chart's operator pods
API_SERVER_PORTS = (443, 6443)  # Kubernetes peer discovery asks the API server for its peers
URI_KEY = "rabbitmq-amqp-uri"  # full AMQP URI with credentials, for clients that take one string
USERNAME_KEY = "rabbitmq-username"
PASSWORD_KEY = "rabbitmq-password"  # the Bitnami chart's default key for auth.existingPasswordSecret
ERLANG_COOKIE_KEY = "rabbitmq-erlang-cookie"  # the chart's default key for auth.existingErlangSecret

RELEASE_NAME = "rabbitmq"
#: The roles whose workloads run beside the broker and read their login from its namespace
#: (the monitoring user's login is built in KEDA's namespace).
CLIENT_ROLES: tuple[users.Role, ...] = ("producer", "consumer")


def service_host(release_name: str, namespace: str) -> str:
    """The in-cluster DNS name of a broker's Service (what clients connect to)."""
    return f"{release_name}.{namespace}.svc.cluster.local"


def amqp_uri(username: str, password: str, host: str, vhost: str = users.VHOST) -> str:
    """The AMQP URI with credentials (`password` may be a template expression) on `vhost`."""
    path = "" if vhost == users.VHOST else quote(vhost, safe="")
    return f"amqp://{username}:{password}@{host}:{AMQP_PORT}/{path}"


# The security context of containers Burrow adds to the broker pods (Pod Security `restricted`), with
# the user the chart runs the broker as, so both read the Erlang cookie they share.
SIDECAR_SECURITY = {
    "runAsUser": 1001, "runAsGroup": 1001, "runAsNonRoot": True, "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
}

#: What the Bitnami chart renders with Burrow's values, and the Secrets and StorageClass it needs first.
KINDS = k.ChartKinds(
    chart="rabbitmq",
    # A PDB always: the chart's pdb.create defaults to true (maxUnavailable 1), Burrow sets it only from 3 replicas.
    kinds=(("apps/v1", "StatefulSet"), k.PDB, *k.NAMESPACE_RBAC, *k.core("Secret", "Service", "ServiceAccount")),
    when={"networkPolicy.enabled": (("networking.k8s.io/v1", "NetworkPolicy"),),
          "metrics.serviceMonitor.default.enabled": (k.SERVICE_MONITOR,),
          "metrics.serviceMonitor.detailed.enabled": (k.SERVICE_MONITOR,),
          "metrics.prometheusRule.enabled": (("monitoring.coreos.com/v1", "PrometheusRule"),)},
    secrets=("auth.existingPasswordSecret", "auth.existingErlangSecret", "loadDefinition.existingSecret",
             "auth.tls.existingSecret"),
    storage_classes=("persistence.storageClass",),
)

# Chart values Burrow derives from the typed props; a values file may not set them,
# so each setting has exactly one home.
MANAGED_VALUES = (
    "image",
    "replicaCount",
    "auth",
    "persistence",
    "resources",
    "global",
    "pdb",
    "podAntiAffinityPreset",
    "podManagementPolicy",
    "updateStrategy",
    "readinessProbe",
    "topologySpreadConstraints",
    "nodeSelector",
    "memoryHighWatermark",
    "metrics",
    "networkPolicy",
)


class RabbitMqBrokerProps(RabbitMqConfig, Props):
    """Props of `RabbitMqBroker`: the environment's `rabbitmq` settings plus chart values.

    `values` are extra Bitnami chart values documents, applied in order before the
    values Burrow derives from the typed fields (which therefore always win).
    """

    release_name: str = Field(default=RELEASE_NAME, pattern=r"^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$")
    values: Sequence[Mapping[str, Any]] = ()
    #: Spread brokers over availability zones (set when the cluster spans several).
    zone_spread: bool = False
    #: Node labels the brokers' nodes must carry (e.g. Karpenter's pool and on-demand capacity). default: any node
    node_selector: Mapping[str, str] = Field(default_factory=dict)
    #: Namespace allowed to scrape the broker's metrics; None: metrics stay internal, no ServiceMonitor.
    monitoring_namespace: str | None = None
    #: Namespace of the KEDA operator, allowed to read queue depth over AMQP.
    keda_namespace: str | None = "keda"
    #: Where the Kubernetes API answers (the EKS endpoint's interfaces are in the private subnets);
    #: the brokers' peer discovery may reach only these on 443. default: any address (a cluster whose
    #: API addresses Burrow does not know, such as kind)
    api_server_cidrs: Sequence[str] = ()
    #: Ship the broker's PrometheusRule (node down, partition, memory and disk alarms).
    alerts: bool = False
    #: The AWS Secrets Manager secret (JSON fields `password`, `erlang_cookie`) that External Secrets
    #: turns into the broker's Secret through Burrow's ClusterSecretStore. default: Terraform
    #: generates the credentials (they are then in its state)
    credentials_key: str | None = None
    #: Generate the credentials inside the cluster with External Secrets' Password generator (no
    #: Terraform state, no Secrets Manager): for short-lived environments such as previews, in a
    #: cluster that runs External Secrets.
    generate_credentials_in_cluster: bool = False
    #: The Secrets Manager secret (JSON field `password`) of each role's broker user
    #: (`burrow.app.broker_users`); required with `credentials_key`. `username` is the
    #: administrator, given to no workload. default: none (Terraform generates the users' passwords)
    user_keys: Mapping[users.Role, str] = Field(default_factory=dict)
    #: One broker user per client role (`burrow.app.broker_users`: a publish-only producer, a
    #: consume-only consumer, a monitoring user), the topology declared by the broker from
    #: `messaging`, and no workload given the administrator. Its clients are then Burrow's
    #: producer and consumer on `messaging`. False: every client (workers of a team's own, with
    #: queues of their own) logs in as `username` and declares its own topology. default: true
    users_by_role: bool = True
    #: Federation with the brokers of the environment's other regions (`burrow.app.federation`);
    #: needs `credentials_key`. default: none (a cell of its own)
    federation: fed.BrokerFederation | None = None
    #: The names both services use (federation's policy and upstreams name the work queue or exchange).
    messaging: MessagingConfig = MessagingConfig()


def detailed_job(release_name: str) -> str:
    """The Prometheus job of a broker's per-queue (detailed) metrics; the aggregated metrics keep the
    job the Prometheus operator gives them, the Service's name (the release's)."""
    return f"{release_name}-detailed"


def managed_keys_in(values: Mapping[str, Any]) -> list[str]:
    """The top-level keys of a chart values document that Burrow manages itself."""
    return [key for key in MANAGED_VALUES if key in values]


class RabbitMqBroker(DeliversObjects, Construct):
    """A RabbitMQ cluster (Bitnami chart) in `namespace`, with its credentials Secret.

    Clients do not need its host name or secret name as strings: `QueueWorker` takes the
    broker itself and asks it how to connect (`host`, `port`, `credentials_env`).

    Escape hatches: `release` (the chart's helm_release), `objects` (the broker's own Kubernetes
    objects in native shape: its NetworkPolicy, federation Service, PrometheusRule; edits before
    synth are delivered and checked) and `delivery` (their object release), `secret` (the
    kubernetes_secret_v1 Terraform generates, or with `credentials_key` the helm_release of the
    ExternalSecrets that build the Secrets; that release's objects are `credentials`), `generated`
    (the other kubernetes_secret_v1 Terraform writes: the clients' logins and the definitions; else empty).
    """

    def __init__(
        self, scope: Construct, id: str, props: RabbitMqBrokerProps | Mapping[str, Any], *, namespace: AppNamespace
    ) -> None:
        """`props`: a `RabbitMqBrokerProps` or a mapping of its fields (validated here, so a mistake
        names this construct's path)."""
        namespace = reference(child_path(scope, id), "namespace", namespace, AppNamespace)
        props = props_for(child_path(scope, id), RabbitMqBrokerProps, props)
        super().__init__(scope, id)
        Guardrails.of(self)
        for index, doc in enumerate(props.values):
            clash = managed_keys_in(doc)
            if clash:
                raise PropsError(
                    self.node.path,
                    f"values[{index}]",
                    clash,
                    "these keys come from the typed props (image, replicas, username, persistence, resources)",
                )
        if props.federation is not None and not props.users_by_role:
            raise PropsError(self.node.path, "users_by_role", False,
                             "federation logs in as a user of its own, which the broker defines with users_by_role: true")
        if props.credentials_key and props.users_by_role and set(props.user_keys) != set(users.ROLES):
            raise PropsError(self.node.path, "user_keys", sorted(props.user_keys),
                             f"a broker with credentials_key has one user per role: name the secret of each of "
                             f"{', '.join(users.ROLES)}")
        if props.federation is not None and not props.credentials_key:
            raise PropsError(self.node.path, "federation", props.federation.region,
                             "federation reads the broker's and the federation user's credentials from Secrets Manager: "
                             "set credentials_key")
        self.props = props
        self.namespace = namespace.name
        self.secret_name = f"{props.release_name}-auth"
        providers = ClusterInfo.providers_of(self)

        self.generated: list[SecretV1] = []
        self.tenants: dict[str, BrokerTenant] = {}
        if props.credentials_key or props.generate_credentials_in_cluster:
            self.secret = self._external_secret(namespace)
        else:
            self.secret = self._generated_secret(namespace)
        self.release = Release(
            self,
            "release",
            name=props.release_name,
            namespace=self.namespace,
            repository=props.chart_repository,
            chart="rabbitmq",
            version=props.chart_version,
            values=self._release_values(),
            atomic=True,
            cleanup_on_fail=True,
            wait=True,
            timeout=900,
            max_history=10,
            provider=providers.helm,
            depends_on=[namespace.resource, self.secret, *self.generated],
        )
        objects = [self.network_policy()]
        if props.federation is not None:
            objects.append(fed.federation_service(props.federation, self.namespace, props.release_name, self.pod_labels))
        if props.alerts:
            objects.append(
                prometheus_rule(
                    f"{props.release_name}-broker",
                    self.namespace,
                    MANAGED_BY,
                    "burrow.rabbitmq",
                    broker_alerts(props.release_name, self.namespace, props.replicas),
                )
            )
        self.delivery = KubernetesObjects(
            self,
            "objects",
            {"release_name": f"{props.release_name}-objects", "namespace": self.namespace, "objects": objects},
            depends_on=[namespace.resource],
        )

    def _release_values(self) -> list[str]:
        """The chart's values documents: the props' `values`, then Burrow's (which win)."""
        return [to_yaml(doc) for doc in (*self.props.values, self.chart_values())]

    def add_tenant(self, scope: Construct, *, name: str, namespace: AppNamespace,
                   password_key: str | None = None, limits: Mapping[str, int] | None = None) -> BrokerTenant:
        """A user of its own for a team (`scope`, whose path errors name), with every right on a virtual
        host of its own, `name`; its login lands in `namespace`, for the team's `QueueWorker`s.

        The broker loads users at boot from its definitions, so the tenant joins them (and the broker
        pods roll, one at a time, to load them). Its password is generated as the broker's role users'
        are: with `credentials_key`, by Secrets Manager (`password_key`, a secret with a field
        `password` that the broker's and the team's namespaces may read) and never in Terraform's
        state; without, by Terraform, in this broker's stack. `limits`: the virtual host's limits
        (`max-connections`, `max-queues`). default: none"""
        self.check_tenant(scope.node.path, scope, name, password_key)
        tenant = BrokerTenant(scope, "broker-user", {"name": name, "password_key": password_key, "limits": limits or {}},
                              broker=self, namespace=namespace)
        self.tenants[name] = tenant
        if self.props.credentials_key:
            self.credentials.objects = tuple(
                self._definitions_object() if obj["metadata"]["name"] == users.DEFINITIONS_SECRET else obj
                for obj in self.credentials.objects)
        else:
            self.definitions.data = self._generated_definitions()
        self.release.values = self._release_values()
        [policy] = [obj for obj in self.objects if obj["metadata"]["name"] == f"{self.props.release_name}-broker"]
        policy["spec"]["ingress"].append({"from": [k8s.peer_in_namespace(namespace.name, self.client_labels)],
                                          "ports": k8s.tcp_ports(*self.amqp_ports)})
        return tenant

    def check_tenant(self, where: str, scope: Construct, name: str, password_key: str | None) -> None:
        """Raise the `PropsError` (naming `where`) that `add_tenant` would for a tenant `name` under
        `scope`: a construct checks before it joins the tree."""
        if not self.users_by_role or self.props.generate_credentials_in_cluster:
            raise PropsError(where, "broker", self.node.path,
                             "a team's broker user is defined in the broker's definitions, which only a broker with "
                             "users_by_role: true (and no generate_credentials_in_cluster) loads")
        if name in self.tenants:
            raise PropsError(where, "name", name, f"{self.tenants[name].node.path} is already tenant {name!r} of "
                             f"{self.node.path}: each team has a name (virtual host) of its own")
        if users.tenant_user(name) == self.props.username:
            raise PropsError(where, "name", name, f"the broker's administrator is {self.props.username!r}: another name")
        if bool(password_key) != bool(self.props.credentials_key):
            allowed = ("the Secrets Manager secret (field password) of the team's broker user, as the broker's role "
                       "users have (credentials_key is set)") if self.props.credentials_key else (
                       "none: this broker's passwords are Terraform's (no credentials_key), and so is the team's")
            raise PropsError(where, "password_key", password_key, allowed)
        if not self.props.credentials_key and TerraformStack.of(scope) is not TerraformStack.of(self):
            raise PropsError(where, "broker", self.node.path,
                             "a broker whose passwords Terraform generates has its tenants in its own stack (the "
                             "password would travel between stacks as an output): build the team there")

    def tenant_password(self, name: str) -> str:
        """Terraform's password of tenant `name` (a broker without `credentials_key`)."""
        random = stack_singleton(self, "random", lambda stack, id: RandomProvider(stack, id))
        return Password(self, f"tenant-{name}-password", length=32, special=False, provider=random).result

    def _user_data(self, role: users.Role, password: str) -> dict[str, str]:
        name = users.user_name(role)
        return {USERNAME_KEY: name, PASSWORD_KEY: password, URI_KEY: amqp_uri(name, password, self.host)}

    def user_secret(self, role: users.Role) -> str:
        """The Secret holding one role's login (with `user_keys`)."""
        return f"{self.props.release_name}-{role}"

    @property
    def users_by_role(self) -> bool:
        """True when each client role logs in as a user of its own and the broker declares the
        topology from its definitions (the clients only check it: `RABBITMQ_TOPOLOGY=passive`)."""
        return self.props.users_by_role

    def _secret_data(self, password: str) -> dict[str, str]:
        username = self.props.username
        return {
            USERNAME_KEY: username,
            PASSWORD_KEY: password,
            URI_KEY: amqp_uri(username, password, self.host),
        }

    def _generated_secret(self, namespace: AppNamespace) -> ITerraformDependable:
        """Terraform's passwords (in its state): the administrator's and the Erlang cookie in the
        chart's Secret, each client role's login in a Secret of its own, and the definitions."""
        random = stack_singleton(self, "random", lambda stack, id: RandomProvider(stack, id))
        providers = ClusterInfo.providers_of(self)

        def secret(id: str, name: str, data: dict[str, str]) -> SecretV1:
            return SecretV1(self, id, metadata=SecretV1Metadata(name=name, namespace=self.namespace, labels=dict(MANAGED_BY)),
                            data=data, type="Opaque", provider=providers.kubernetes, depends_on=[namespace.resource])

        password = Password(self, "password", length=32, special=False, provider=random)
        erlang_cookie = Password(self, "erlang-cookie", length=64, special=False, provider=random)
        if not self.users_by_role:  # one login for every client: the broker's `username`
            if self.props.keda_namespace:
                self._scaler_secret(self.props.username, password.result, namespace)
            return secret("auth", self.secret_name,
                          {**self._secret_data(password.result), ERLANG_COOKIE_KEY: erlang_cookie.result})
        logins = {role: Password(self, f"{role}-password", length=32, special=False, provider=random).result
                  for role in users.ROLES}
        if self.props.keda_namespace:
            self._scaler_secret(users.user_name("monitoring"), logins["monitoring"], namespace)
        self._logins = (password.result, logins)
        # the broker's release waits for these: its clients wait for it
        self.generated = [secret(f"{role}-auth", self.user_secret(role), self._user_data(role, logins[role]))
                          for role in CLIENT_ROLES]
        self.definitions = secret("definitions", users.DEFINITIONS_SECRET, self._generated_definitions())
        self.generated.append(self.definitions)
        return secret("auth", self.secret_name, {PASSWORD_KEY: password.result, ERLANG_COOKIE_KEY: erlang_cookie.result})

    def _generated_definitions(self) -> dict[str, str]:
        """The definitions Secret's data with Terraform's passwords (tenants' included)."""
        admin_password, logins = self._logins
        tenants = {name: tenant.generated_password for name, tenant in self.tenants.items()}
        definitions = users.broker_definitions(self.props.username, admin_password, logins, self.props.messaging,
                                               tenants=tenants, tenant_limits=self._tenant_limits())
        return {fed.DEFINITIONS_FILE: json.dumps(definitions, indent=1)}

    def _definitions_object(self) -> k8s.K8sObject:
        """The ExternalSecret rendering the definitions from Secrets Manager (tenants' passwords included)."""
        return users.definitions_secret(self.namespace, self.props.username, self.props.messaging,
                                        self.props.credentials_key or "", self.props.user_keys, self.props.federation,
                                        {name: tenant.password_key or "" for name, tenant in self.tenants.items()},
                                        self._tenant_limits())

    def _tenant_limits(self) -> dict[str, dict[str, int]]:
        return {name: dict(tenant.limits) for name, tenant in self.tenants.items()}

    def _scaler_secret(self, username: str, password: str, namespace: AppNamespace) -> None:
        """KEDA reads Secrets in its own namespace only: the AMQP URI there, and the
        ClusterTriggerAuthentication naming it (with Secrets Manager, the add-ons stack builds both)."""
        name = keda.scaler_auth_name(self.namespace)
        providers = ClusterInfo.providers_of(self)
        SecretV1(self, "scaler-auth", metadata=SecretV1Metadata(name=name, namespace=self.props.keda_namespace,
                                                                 labels=dict(MANAGED_BY)),
                 data={keda.SCALER_KEY: amqp_uri(username, password, self.host)}, type="Opaque",
                 provider=providers.kubernetes)
        KubernetesObjects(self, "scaler-auth-objects", {"release_name": f"{name}-scaler", "namespace": self.props.keda_namespace,
                                                         "objects": [keda.scaler_auth(self.namespace)]},
                          depends_on=[namespace.resource])

    def _external_secret(self, namespace: AppNamespace) -> ITerraformDependable:
        if self.props.credentials_key and not self.users_by_role:
            template = {**self._secret_data("{{ .password }}"), ERLANG_COOKIE_KEY: "{{ .erlang_cookie }}"}
            objects = [external_secret(self.secret_name, self.namespace, self.props.credentials_key, template)]
        elif self.props.credentials_key:
            # The administrator's Secret serves the chart only: no workload reads it. It keeps the
            # (not secret) username key for one upgrade: until the broker's release has rolled, a
            # client pod started from the previous release's template still reads it, and a missing
            # key would keep that pod from starting (CreateContainerConfigError).
            admin = {USERNAME_KEY: self.props.username, PASSWORD_KEY: "{{ .password }}",
                     ERLANG_COOKIE_KEY: "{{ .erlang_cookie }}"}
            objects = [external_secret(self.secret_name, self.namespace, self.props.credentials_key, admin),
                       *(external_secret(self.user_secret(role), self.namespace, self.props.user_keys[role],
                                         self._user_data(role, "{{ .password }}")) for role in CLIENT_ROLES),
                       self._definitions_object()]
            if self.props.federation is not None:  # the TLS Secret the chart mounts, before the brokers start
                objects.append(fed.federation_certificate(self.props.federation, self.namespace, self.service_hosts))
        else:
            generator = f"{self.props.release_name}-password"
            objects = [password_generator(generator, self.namespace)]
            if self.users_by_role:  # the Erlang cookie on its own, stable; the logins named after their template
                objects += [generated_secret(self.secret_name, self.namespace, generator, ("erlang_cookie",),
                                             {ERLANG_COOKIE_KEY: "{{ .erlang_cookie }}"}),
                            generated_secret(self.login_secret, self.namespace, generator, *self._in_cluster_logins())]
            else:
                template = {**self._secret_data("{{ .password }}"), ERLANG_COOKIE_KEY: "{{ .erlang_cookie }}"}
                objects.append(generated_secret(self.secret_name, self.namespace, generator,
                                                ("password", "erlang_cookie"), template))
        self.credentials = KubernetesObjects(
            self,
            "credentials",
            {"release_name": f"{self.props.release_name}-credentials", "namespace": self.namespace, "objects": objects},
            depends_on=[namespace.resource],
        )
        return self.credentials.release

    def _in_cluster_logins(self) -> tuple[tuple[str, ...], dict[str, str]]:
        """The generated fields and the template of the logins Secret when External Secrets generates
        the passwords in the cluster (`users_by_role`): the administrator's password, each role's
        login under keys prefixed with the role, and the definitions the broker loads them from."""
        passwords = {role: "{{ ." + users.password_field(role) + " }}" for role in users.ROLES}
        definitions = users.broker_definitions(self.props.username, "{{ .password }}", passwords, self.props.messaging)
        template = {PASSWORD_KEY: "{{ .password }}", fed.DEFINITIONS_FILE: json.dumps(definitions, indent=1)}
        for role in CLIENT_ROLES:
            template.update({f"{role}-{key}": value for key, value in self._user_data(role, passwords[role]).items()})
        return ("password", *(users.password_field(role) for role in users.ROLES)), template

    @cached_property
    def login_secret(self) -> str:
        """The Secret with the administrator's password and the definitions (the chart's), and with
        each role's login when External Secrets generates them in the cluster. That Secret is named
        after a digest of its template: External Secrets renders a generated Secret once and never
        again (`refreshInterval: 0`), so a changed template (a new user, another queue) must be a
        new Secret, which the broker and the services then roll onto, rather than an old Secret
        without the keys they now read."""
        if not (self.users_by_role and self.props.generate_credentials_in_cluster):
            return self.secret_name
        template = json.dumps(self._in_cluster_logins(), sort_keys=True)
        return f"{self.props.release_name}-logins-{hashlib.sha256(template.encode()).hexdigest()[:8]}"

    def policy_facts(self) -> PolicyFacts:
        """What the guardrails check: the values the chart renders with (escape-hatch edits included)."""
        return PolicyFacts("broker", self.objects, release_values(self.release))

    @property
    def pod_labels(self) -> dict[str, str]:
        """The labels the chart puts on broker pods."""
        return {"app.kubernetes.io/name": "rabbitmq", "app.kubernetes.io/instance": self.props.release_name}

    @property
    def client_labels(self) -> dict[str, str]:
        """Pods with these labels may reach the broker over AMQP (QueueWorker adds them to its pods)."""
        return {"burrow.dev/rabbitmq-client": self.props.release_name}

    @property
    def amqp_ports(self) -> tuple[int, ...]:
        return (AMQP_PORT, AMQPS_PORT) if self.props.tls else (AMQP_PORT,)

    def network_policy(self) -> dict[str, Any]:
        """Who may talk to the brokers: labelled clients of the namespace and KEDA's operator over
        AMQP, the brokers among themselves, Prometheus on the metrics port, the peer regions'
        brokers (federation); brokers may reach each other, the API server (peer discovery) and,
        federated, the peer regions' load balancers. Nothing else, on no other port."""
        ingress = [
            {"from": [k8s.peer_pods(self.client_labels)], "ports": k8s.tcp_ports(*self.amqp_ports)},
            {"from": [k8s.peer_pods(self.pod_labels)], "ports": k8s.tcp_ports(*CLUSTER_PORTS, AMQP_PORT)},
        ]
        if self.props.keda_namespace:
            ingress.append({"from": [k8s.peer_in_namespace(self.props.keda_namespace, KEDA_OPERATOR)],
                            "ports": k8s.tcp_ports(AMQP_PORT)})
        if self.props.monitoring_namespace:
            ingress.append({"from": [k8s.peer_in_namespace(self.props.monitoring_namespace, k8s.PROMETHEUS)],
                            "ports": k8s.tcp_ports(METRICS_PORT)})
        api_server: dict[str, Any] = {"ports": k8s.tcp_ports(*API_SERVER_PORTS)}
        if self.props.api_server_cidrs:
            api_server["to"] = [{"ipBlock": {"cidr": cidr}} for cidr in self.props.api_server_cidrs]
        egress = [{"to": [k8s.peer_pods(self.pod_labels)], "ports": k8s.tcp_ports(*CLUSTER_PORTS, AMQP_PORT)}, api_server]
        if self.props.federation is not None:
            links_in, links_out = fed.federation_rules(self.props.federation)
            ingress += links_in
            egress += links_out
        return k8s.network_policy(
            f"{self.props.release_name}-broker", self.namespace, self.pod_labels, ingress=ingress, egress=egress
        )

    def _service_monitors(self) -> dict[str, Any]:
        """The chart's ServiceMonitor endpoints: the aggregated one, and per-queue depth and consumers.

        Both scrape the same port of the same pods, so Prometheus would give both targets the same
        labels: two `up` series and two `rabbitmq_identity_info` series per node that collide (and
        count every node twice). The detailed endpoint's targets get a job of their own
        (`<release>-detailed`, see `detailed_job`), and its copy of `rabbitmq_identity_info` is
        dropped, so counting that series counts nodes."""
        monitored = self.props.monitoring_namespace is not None
        return {
            "default": {"enabled": monitored},
            "detailed": {
                "enabled": monitored,
                "family": ["queue_coarse_metrics", "queue_consumer_count"],
                "vhost": [users.VHOST, *(users.tenant_vhost(name) for name in self.tenants)],
                "relabelings": [{"targetLabel": "job", "replacement": detailed_job(self.props.release_name)}],
                "metricRelabelings": [{"sourceLabels": ["__name__"], "regex": "rabbitmq_identity_info",
                                       "action": "drop"}],
            },
        }

    @property
    def host(self) -> str:
        """The in-cluster DNS name clients connect to (the chart's Service)."""
        return service_host(self.props.release_name, self.namespace)

    @property
    def service_hosts(self) -> list[str]:
        """The in-cluster names of the chart's Service (a TLS certificate's names)."""
        return [self.host, f"{self.props.release_name}.{self.namespace}.svc"]

    @property
    def port(self) -> int:
        return AMQP_PORT

    @property
    def replicas(self) -> int:
        return self.props.replicas

    def credentials_env(self, role: str, username_var: str, password_var: str) -> list[EnvFromSecret]:
        """Environment variables that read a client's login: its role's user (`users_by_role`), else
        the broker's one user."""
        secret, prefix = self.user_secret(role) if self.users_by_role else self.secret_name, ""
        if self.users_by_role and self.props.generate_credentials_in_cluster:
            secret, prefix = self.login_secret, f"{role}-"  # one generated Secret, each role's own keys
        return [EnvFromSecret(username_var, secret, prefix + USERNAME_KEY),
                EnvFromSecret(password_var, secret, prefix + PASSWORD_KEY)]

    def chart_values(self) -> dict[str, Any]:
        """The chart values derived from the typed props (the last, winning values document)."""
        props = self.props
        image: dict[str, Any] = {
            "registry": props.image.registry,
            "repository": props.image.repository,
            "tag": props.image.tag,
        }
        if props.image.digest:
            image["digest"] = props.image.digest
        persistence: dict[str, Any] = {"enabled": props.persistence.enabled, "size": props.persistence.size}
        if props.persistence.storage_class:
            persistence["storageClass"] = props.persistence.storage_class
        auth: dict[str, Any] = {
            "username": props.username,
            "existingPasswordSecret": self.login_secret,
            "existingErlangSecret": self.secret_name,
        }
        if props.federation is not None:  # the federation CA's certificate serves in-cluster TLS clients too
            auth["tls"] = fed.tls_values()
        elif props.tls:
            auth["tls"] = {"enabled": True, "autoGenerated": True, "failIfNoPeerCert": False}
        values: dict[str, Any] = {
            # The chart refuses images outside its own repository unless this is set; Burrow
            # always names its image explicitly (bitnamilegacy by default, or a mirror).
            "global": {"security": {"allowInsecureImages": True}},
            "image": image,
            "replicaCount": props.replicas,
            "auth": auth,
            "persistence": persistence,
            "resources": props.resources.model_dump(),
            "memoryHighWatermark": {"enabled": True, "type": "relative", "value": props.memory_high_watermark},
            "podAntiAffinityPreset": props.anti_affinity,
            # A rolling restart (an upgrade, a node drain) takes one pod at a time and waits for it
            # to be Ready before the next: the chart's defaults, pinned here so no values file or
            # chart bump changes them (docs/upgrades.md, "The broker").
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate"},
            "readinessProbe": {"enabled": True},
            # Burrow builds the broker's NetworkPolicy itself (see network_policy).
            "networkPolicy": {"enabled": False},
            "metrics": {"enabled": True, "serviceMonitor": self._service_monitors()},
        }
        if "tls" in auth:  # the TLS listener's port, which the federation load balancer and policy name
            values["containerPorts"] = {"amqpTls": AMQPS_PORT}
            values["service"] = {"ports": {"amqpTls": AMQPS_PORT}}
        if props.node_selector:
            values["nodeSelector"] = dict(props.node_selector)
        if self.tenants:  # a new tenant rolls the brokers: they load users only at boot
            # every tenant and its limits: a new team or new limits is a new pod template, so the brokers
            # roll and load them (definitions are read only at boot)
            values["podAnnotations"] = {"burrow.dev/tenants": ",".join(
                f"{name}({','.join(f'{key}={value}' for key, value in sorted(self.tenants[name].limits.items()))})"
                for name in sorted(self.tenants))}
        if self.users_by_role:
            in_cluster = self.props.generate_credentials_in_cluster  # the definitions are in the generated Secret
            values.update(users.chart_values(self.login_secret if in_cluster else users.DEFINITIONS_SECRET))
        if props.federation is not None:
            sidecar = fed.keeper_sidecar(props.federation, props.messaging, props.image.reference, props.release_name,
                                         SIDECAR_SECURITY)
            values.update(fed.chart_values(sidecar))
        if props.replicas >= 3:
            values["pdb"] = {"create": True, "maxUnavailable": 1}
        if props.zone_spread and props.replicas > 1:
            values["topologySpreadConstraints"] = [
                {
                    "maxSkew": 1,
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "DoNotSchedule" if props.anti_affinity == "hard" else "ScheduleAnyway",
                    "labelSelector": {"matchLabels": self.pod_labels},
                }
            ]
        return values



class BrokerTenantProps(Props):
    """Props of `BrokerTenant` (which `RabbitMqBroker.add_tenant` builds). Required: `name`."""

    #: The tenant's name: its virtual host's, and (as `team-<name>`) its user's.
    name: str = Field(min_length=1)
    #: The Secrets Manager secret (field `password`) of its user, when the broker's credentials come
    #: from Secrets Manager. default: none (Terraform generates it with the broker's)
    password_key: str | None = None
    #: Its virtual host's limits, as RabbitMQ names them (`max-connections`, `max-queues`). default: none
    limits: dict[str, int] = Field(default_factory=dict)


class BrokerTenant(Construct):
    """A team's user on a `RabbitMqBroker` (`RabbitMqBroker.add_tenant`), with every right on a
    virtual host of its own (`vhost`, the team's name) and none on `/` (Burrow's services) or any
    other tenant's; its login is Secret `secret_name` in the team's namespace, which the team's
    `QueueWorker`s read (`QueueWorker(..., tenant=)`).

    Escape hatches: `login` (what creates the Secret: the kubernetes_secret_v1 Terraform writes, or
    the helm_release of the ExternalSecret that builds it from Secrets Manager).
    """

    def __init__(self, scope: Construct, id: str, props: BrokerTenantProps | Mapping[str, Any], *,
                 broker: RabbitMqBroker, namespace: AppNamespace) -> None:
        props = props_for(child_path(scope, id), BrokerTenantProps, props)
        super().__init__(scope, id)
        self.props = props
        name, password_key = props.name, props.password_key
        self.broker = broker
        self.name = name
        self.vhost = users.tenant_vhost(name)
        self.username = users.tenant_user(name)
        self.namespace = namespace.name
        self.password_key = password_key
        #: The virtual host's limits (`max-connections`, `max-queues`).
        self.limits: dict[str, int] = dict(props.limits)
        self.secret_name = f"{broker.props.release_name}-login"
        metadata = SecretV1Metadata(name=self.secret_name, namespace=self.namespace, labels=dict(MANAGED_BY))
        self.generated_password: str | None = None
        if password_key is None:
            self.generated_password = broker.tenant_password(name)
            self.login: ITerraformDependable = SecretV1(
                self, "login", metadata=metadata, data=self._login_data(self.generated_password), type="Opaque",
                provider=ClusterInfo.providers_of(self).kubernetes, depends_on=[namespace.resource])
            return
        delivery = KubernetesObjects(self, "login", {
            "release_name": f"{broker.props.release_name}-login", "namespace": self.namespace,
            "objects": [external_secret(self.secret_name, self.namespace, password_key,
                                        self._login_data("{{ .password }}"))]}, depends_on=[namespace.resource])
        self.login = delivery.release

    def _login_data(self, password: str) -> dict[str, str]:
        return {USERNAME_KEY: self.username, PASSWORD_KEY: password,
                URI_KEY: amqp_uri(self.username, password, self.broker.host, self.vhost)}

    def credentials_env(self, username_var: str, password_var: str) -> list[EnvFromSecret]:
        """Environment variables that read the tenant's login."""
        return [EnvFromSecret(username_var, self.secret_name, USERNAME_KEY),
                EnvFromSecret(password_var, self.secret_name, PASSWORD_KEY)]
