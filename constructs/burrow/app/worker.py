"""`QueueWorker`: any team's service that talks to a `RabbitMqBroker`; Burrow's producer and
consumer are two presets of it (`QueueWorker.producer`, `QueueWorker.consumer`).

It builds the workload's Kubernetes objects once, in native shape, and delivers them as one
release of Burrow's object chart, named after the worker. The container is told its port, its
drain time and its broker (host, port, vhost, exchange, queue, routing key, credentials) in
environment variables; Burrow's own services implement that contract in `apps/`, and a test
checks both sides.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from cdktf import ITerraformDependable
from pydantic import Field, ValidationError, ValidationInfo, field_validator

from burrow.addons import keda
from burrow.app.broker_users import VHOST
from burrow.app.namespace import AppNamespace
from burrow.app.rabbitmq import CLIENT_ROLES, BrokerTenant, RabbitMqBroker
from burrow.app.settings import (
    CONSUMER_AUTOSCALING,
    PRODUCER_AUTOSCALING,
    CpuAutoscalingConfig,
    MessagingConfig,
    QueueAutoscalingConfig,
    WorkerScaling,
)
from burrow.errors import PropsError
from burrow.k8s import objects as k8s
from burrow.k8s.objects import EnvFromSecret
from burrow.k8s.release import DeliversObjects, KubernetesObjects
from burrow.monitoring.objects import service_monitor
from burrow.monitoring.rules import (
    Alert,
    alert_prefix,
    consumer_alerts,
    producer_alerts,
    prometheus_rule,
    queue_alerts,
    workload_alerts,
)
from burrow.monitoring.settings import AlertThresholds
from burrow.policy.facts import PolicyFacts
from burrow.policy.guardrails import Guardrails
from burrow.props import Props, child_path, props_for, reference
from burrow.settings import Image, Resources
from constructs import Construct

#: A worker's name: its objects', its container's and its release's (Helm allows 53 characters).
WORKER_NAME = r"^[a-z]([-a-z0-9]{0,51}[a-z0-9])?$"
LABEL_VALUE = r"^[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?$"
PROBE_PATH = r"^/\S*$"

# Burrow's own services (apps/): the port and probe paths they serve.
HTTP_PORT = 5000
LIVENESS_PATH = "/health"
READINESS_PATH = "/ready"
# The consumer's processed-id log (duplicate recognition across container restarts) lives on an
# emptyDir: it survives a crash or OOM kill of the container, not the pod's replacement.
STATE_DIR = "/var/lib/burrow"
PROCESSED_LOG = f"{STATE_DIR}/processed.jsonl"


class QueueBinding(Props):
    """Where a worker works on its broker: every name is the team's own, none has a default."""

    exchange: str = Field(min_length=1, max_length=255)
    queue: str = Field(min_length=1, max_length=255)
    routing_key: str = Field(min_length=1, max_length=255)


AUTOSCALING_KINDS: dict[str, type[CpuAutoscalingConfig | QueueAutoscalingConfig]] = {
    "cpu": CpuAutoscalingConfig, "queue": QueueAutoscalingConfig,
}


class QueueWorkerProps(WorkerScaling, Props):
    """Props of `QueueWorker`. Required: `image`, `resources` and `messaging`. `replicas` (default 2)
    comes from `WorkerScaling`, which the environment schema shares."""

    #: The name of the worker's Deployment, Service, ServiceAccount, container and release; unique in
    #: its namespace. default: the construct id
    name: str | None = Field(default=None, pattern=WORKER_NAME)
    #: What the worker does (label app.kubernetes.io/component). default: "worker"
    role: str = Field(default="worker", pattern=LABEL_VALUE)
    image: Image
    #: The container's entrypoint and its arguments. default: the image's own
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    #: The HTTP port the container serves its probes (and metrics) on; also in HTTP_PORT. default: 8080
    port: int = Field(default=8080, ge=1, le=65535)
    #: Path that answers 200 while the process is alive (liveness and startup probes). default: /healthz
    liveness_path: str = Field(default="/healthz", pattern=PROBE_PATH)
    #: Path that answers 200 while the worker can do its work (readiness probe). default: /readyz
    readiness_path: str = Field(default="/readyz", pattern=PROBE_PATH)
    #: The exchange, queue and routing key the worker uses on its broker (RABBITMQ_EXCHANGE,
    #: RABBITMQ_QUEUE, RABBITMQ_ROUTING_KEY); queue autoscaling and queue alerts watch this queue.
    messaging: QueueBinding
    resources: Resources
    #: Extra environment variables (for Burrow's services, PUBLISH_RATE or PREFETCH_COUNT).
    settings: Mapping[str, str] = Field(default_factory=dict)
    #: Seconds the service takes to finish in-flight work after SIGTERM (SHUTDOWN_TIMEOUT).
    drain_seconds: int = Field(default=20, ge=1, le=600)
    #: Seconds Kubernetes waits after SIGTERM before SIGKILL; must exceed drain_seconds.
    termination_grace_seconds: int = Field(default=30, ge=2, le=3600, validate_default=True)
    #: The application that the worker belongs to (app.kubernetes.io/part-of). default: the namespace's name
    part_of: str | None = Field(default=None, pattern=LABEL_VALUE)
    #: CPU autoscaling (HorizontalPodAutoscaler) or queue-depth autoscaling (KEDA ScaledObject on the
    #: worker's queue); `replicas` is the minimum. default: a fixed `replicas`
    autoscaling: CpuAutoscalingConfig | QueueAutoscalingConfig | None = None
    #: Refuse to schedule two pods on one node (or zone) rather than prefer not to. default: soft
    hard_spread: bool = False
    #: Spread pods over availability zones too (set when the cluster spans several).
    zone_spread: bool = False
    #: Node labels the pods' nodes must carry (e.g. Karpenter's pool). default: any node
    node_selector: Mapping[str, str] = Field(default_factory=dict)
    #: Namespace allowed to scrape /metrics (and a ServiceMonitor for it); None: no monitoring.
    monitoring_namespace: str | None = None
    #: Alert thresholds; set, the worker ships its PrometheusRule: restarts and readiness, and
    #: (with `consumes`) its queue's consumers and backlog, under names that start with the worker's.
    alerts: AlertThresholds | None = None
    #: The worker consumes `messaging.queue` (its queue alerts watch it); a publisher sets False.
    consumes: bool = True
    #: The alerts of Burrow's own producer or consumer service (their `burrow_*` metrics, under the
    #: names Burrow's runbooks use) in place of the queue alerts: for a worker that runs Burrow's image.
    service_alerts: Literal["producer", "consumer"] | None = None
    #: Variables read from Secrets: name -> (Secret, key), e.g. an API token.
    secret_settings: Mapping[str, tuple[str, str]] = Field(default_factory=dict)
    #: Secrets read as files that follow the Secret's changes without a restart: variable ->
    #: Secret, mounted read-only; the variable names the directory (e.g. PUBLISH_TOKENS_DIR).
    secret_dirs: Mapping[str, str] = Field(default_factory=dict)
    #: A writable directory on the pod's own disk (the root file system is read-only); it survives
    #: container restarts, not the pod's replacement. default: only /tmp
    state_dir: str | None = Field(default=None, pattern=PROBE_PATH)

    @field_validator("messaging", mode="before")
    @classmethod
    def _binding(cls, value: Any) -> Any:
        """An environment's `MessagingConfig` (Burrow's presets) is taken as the binding it names."""
        return value.model_dump() if isinstance(value, MessagingConfig) else value

    @field_validator("autoscaling", mode="before")
    @classmethod
    def _autoscaling_kind(cls, value: Any) -> Any:
        """A mapping says which autoscaler it means (`kind: cpu` or `kind: queue`): both take
        `max_replicas`, and a guess would scale on the wrong signal."""
        if not isinstance(value, Mapping):
            return value
        fields = dict(value)
        kind = fields.pop("kind", None)
        if kind not in AUTOSCALING_KINDS:
            raise ValueError(f"set kind: cpu (a HorizontalPodAutoscaler on CPU) or kind: queue (KEDA on the worker's "
                             f"queue), not {kind!r}")
        try:
            return AUTOSCALING_KINDS[kind].model_validate(fields)
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ValueError(f"{where}={first.get('input')!r}: {first['msg']}") from None

    @field_validator("termination_grace_seconds")
    @classmethod
    def _grace_exceeds_drain(cls, grace: int, info: ValidationInfo) -> int:
        drain = info.data.get("drain_seconds")
        if drain is not None and grace <= drain:
            raise ValueError(f"must exceed drain_seconds ({drain}), or Kubernetes kills the pod mid-drain")
        return grace


#: Burrow's services (apps/): what both presets set, then what each adds.
BURROW_SERVICE: dict[str, Any] = {
    "port": HTTP_PORT, "liveness_path": LIVENESS_PATH, "readiness_path": READINESS_PATH, "part_of": "burrow",
}
PRODUCER: dict[str, Any] = {
    **BURROW_SERVICE, "role": "producer", "consumes": False, "service_alerts": "producer",
    "autoscaling": PRODUCER_AUTOSCALING,
}
CONSUMER: dict[str, Any] = {
    **BURROW_SERVICE, "role": "consumer", "service_alerts": "consumer", "state_dir": STATE_DIR,
    "autoscaling": CONSUMER_AUTOSCALING,
}


def over_preset(preset: Mapping[str, Any], props: Mapping[str, Any]) -> dict[str, Any]:
    """`props` over a preset. Props that set `replicas` but not `autoscaling` keep the preset's
    autoscaling with its maximum raised to at least `replicas`: asking for more pods than the
    preset's ceiling is not a mistake about a setting the caller never set."""
    merged = {**preset, **props}
    scaling, replicas = preset.get("autoscaling"), props.get("replicas")
    if "autoscaling" not in props and scaling is not None and isinstance(replicas, int):
        merged["autoscaling"] = scaling.model_copy(update={"max_replicas": max(scaling.max_replicas, replicas)})
    return merged


class QueueWorker(DeliversObjects, Construct):
    """A Deployment wired to `broker`, with its Service, ServiceAccount, NetworkPolicy and, as its
    props ask, its autoscaler, ServiceMonitor and PrometheusRule.

    `props` is a `QueueWorkerProps` or a mapping of its fields (validated here, so a mistake names
    this construct's path). Escape hatches: `objects` (the Kubernetes objects, native shape),
    `deployment` (the Deployment object), `delivery` (their object release) and `release` (its
    helm_release). Edits made before synth are delivered and checked by the guardrails.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        props: QueueWorkerProps | Mapping[str, Any],
        *,
        namespace: AppNamespace,
        broker: RabbitMqBroker,
        depends_on: Sequence[ITerraformDependable] = (),
        tenant: BrokerTenant | None = None,
    ) -> None:
        """`depends_on`: what the workload's release waits for besides its namespace and broker (the
        release of a Secret that `secret_settings` read, say). `tenant`: a team's user on `broker`
        (`Team.tenant`): the worker logs in as it, on the team's virtual host, and declares its own
        topology there. default: Burrow's client roles (`role` producer or consumer)"""
        path = child_path(scope, id)
        namespace = reference(path, "namespace", namespace, AppNamespace)
        broker = reference(path, "broker", broker, RabbitMqBroker)
        tenant = None if tenant is None else reference(path, "tenant", tenant, BrokerTenant)
        props = props_for(path, QueueWorkerProps, props)
        reserved = sorted(set(props.settings) & set(self.broker_env(broker, props.messaging, tenant)))
        if reserved:
            raise PropsError(path, "settings", reserved, "these variables are set from the broker")
        if props.name is None and not re.fullmatch(WORKER_NAME, id):
            raise PropsError(path, "id", id, f"a worker is named by its id unless props set name, and Kubernetes "
                             f"and Helm accept only {WORKER_NAME}: set name")
        scaling = props.autoscaling
        if isinstance(scaling, QueueAutoscalingConfig) and scaling.enabled and broker.props.keda_namespace is None:
            raise PropsError(path, "autoscaling", "kind: queue",
                             "the broker has no keda_namespace, so KEDA has no login to read the queue with: set the "
                             "broker's keda_namespace, or scale with kind: cpu")
        if tenant is not None and tenant.broker is not broker:
            raise PropsError(path, "tenant", tenant.node.path, f"a user of {tenant.broker.node.path}, not of "
                             f"{broker.node.path}: give the worker its team's broker")
        if tenant is not None and tenant.namespace != namespace.name:
            raise PropsError(path, "namespace", namespace.name, f"the login of {tenant.node.path} is in namespace "
                             f"{tenant.namespace}: run the team's workers there (Team.namespace)")
        if tenant is None and broker.users_by_role and props.role not in CLIENT_ROLES:
            raise PropsError(path, "role", props.role,
                             f"this broker gives logins only to the roles {', '.join(CLIENT_ROLES)} (users_by_role); "
                             "for workers of your own, make them a Team's (Team.worker, or tenant=team.tenant): they "
                             "then log in as the team's user on its own virtual host")
        if tenant is None and broker.users_by_role and props.messaging.model_dump() != broker.props.messaging.model_dump():
            raise PropsError(path, "messaging", props.messaging.model_dump(),
                             f"the broker declares the topology from its own messaging props "
                             f"({broker.props.messaging.model_dump()}) and this worker may not declare any: use the same")
        super().__init__(scope, id)
        Guardrails.of(self)
        self.name = props.name or id
        self.props = props
        #: (the broker's namespace, the virtual host) of a team's queue, whose metrics carry those labels
        self.queue_on = (broker.namespace, tenant.vhost) if tenant else None
        self.part_of = props.part_of or namespace.name
        self.labels = k8s.labels_for(self.name, self.part_of, props.role)
        container = k8s.ContainerSpec(
            name=self.name,
            image=props.image.reference,
            port=props.port,
            resources=props.resources.model_dump(),
            env={
                "HTTP_PORT": str(props.port),
                "SHUTDOWN_TIMEOUT": str(props.drain_seconds),
                **self.broker_env(broker, props.messaging, tenant),
                **props.settings,
            },
            state_dir=props.state_dir,
            secret_env=[*(tenant.credentials_env("RABBITMQ_USERNAME", "RABBITMQ_PASSWORD") if tenant else
                          broker.credentials_env(props.role, "RABBITMQ_USERNAME", "RABBITMQ_PASSWORD")),
                        *(EnvFromSecret(var, secret, key) for var, (secret, key) in props.secret_settings.items())],
            secret_dirs=props.secret_dirs,
            liveness=k8s.HttpProbe(props.liveness_path, period_seconds=10, failure_threshold=3),
            readiness=k8s.HttpProbe(props.readiness_path, period_seconds=5, failure_threshold=2),
            startup=k8s.HttpProbe(props.liveness_path, period_seconds=2, failure_threshold=30),
            command=props.command,
            args=props.args,
        )
        ns = namespace.name
        labels = self.labels
        pod_labels = {**labels, **broker.client_labels}
        scaling = props.autoscaling if props.autoscaling and props.autoscaling.enabled else None
        self.deployment = k8s.deployment(
            self.name,
            ns,
            pod_labels,
            None if scaling else props.replicas,
            container,
            props.termination_grace_seconds,
            spread=k8s.topology_spread(labels, props.hard_spread, props.zone_spread),
            node_selector=props.node_selector,
        )
        objects = [
            k8s.service_account(self.name, ns, labels),
            self.deployment,
            k8s.service(self.name, ns, labels, props.port),
            self.network_policy(ns, labels, broker),
        ]
        if props.replicas >= 2:
            objects.append(k8s.pod_disruption_budget(self.name, ns, labels))
        if isinstance(scaling, CpuAutoscalingConfig):
            objects.append(
                k8s.cpu_autoscaler(self.name, ns, labels, props.replicas, scaling.max_replicas, scaling.target_cpu_percent)
            )
        elif isinstance(scaling, QueueAutoscalingConfig):
            objects.extend(self.queue_autoscaler(ns, labels, broker, scaling, tenant))
        if props.monitoring_namespace:
            objects.append(service_monitor(self.name, ns, labels))
        if props.alerts:
            objects.append(prometheus_rule(self.name, ns, labels, f"{self.part_of}.{self.name}", self.alert_rules(ns)))
        self.delivery = KubernetesObjects(
            self,
            "objects",
            {"release_name": self.name, "namespace": ns, "objects": objects},
            depends_on=[namespace.resource, broker.release, *([tenant.login] if tenant else []), *depends_on],
        )
        self.release = self.delivery.release

    @classmethod
    def producer(
        cls, scope: Construct, id: str, props: Mapping[str, Any], *, namespace: AppNamespace, broker: RabbitMqBroker,
        depends_on: Sequence[ITerraformDependable] = (),
    ) -> QueueWorker:
        """Burrow's producer (apps/producer): `props` over the preset (role producer, port 5000, /health
        and /ready, part of burrow, publishes only, the producer's alerts, CPU autoscaling)."""
        return cls(scope, id, namespace=namespace, broker=broker, props=over_preset(PRODUCER, props), depends_on=depends_on)

    @classmethod
    def consumer(
        cls, scope: Construct, id: str, props: Mapping[str, Any], *, namespace: AppNamespace, broker: RabbitMqBroker,
        depends_on: Sequence[ITerraformDependable] = (),
    ) -> QueueWorker:
        """Burrow's consumer (apps/consumer): `props` over the preset (role consumer, port 5000, /health
        and /ready, part of burrow, the consumer's alerts, its processed-id log in a state directory,
        KEDA autoscaling on its queue, which needs the broker's `keda_namespace`)."""
        settings = {"PROCESSED_LOG": PROCESSED_LOG, **props.get("settings", {})}
        return cls(scope, id, namespace=namespace, broker=broker, props={**over_preset(CONSUMER, props), "settings": settings},
                   depends_on=depends_on)

    def policy_facts(self) -> PolicyFacts:
        """What the guardrails check: the objects as delivered, after every escape-hatch edit."""
        return PolicyFacts("workload", self.delivery.objects)

    def alert_rules(self, namespace: str) -> list[Alert]:
        """What to alert on for this worker: restarts and readiness always, then its queue's (or, for
        Burrow's services, their own)."""
        props = self.props
        thresholds = props.alerts
        assert thresholds is not None
        prefix = alert_prefix(self.part_of, self.name)
        burrows = props.service_alerts is not None  # Burrow's own services: their log lines and runbooks
        alerts = workload_alerts(self.name, namespace, thresholds, prefix, props.readiness_path, burrows)
        if props.service_alerts == "producer":
            alerts += producer_alerts(self.name, namespace)
        elif props.service_alerts == "consumer":
            alerts += consumer_alerts(self.name, namespace, props.messaging.queue, thresholds)
        elif props.consumes:
            alerts += queue_alerts(self.name, namespace, props.messaging.queue, thresholds, prefix, burrow=False,
                                   on=self.queue_on)
        return alerts

    def network_policy(self, namespace: str, labels: dict[str, str], broker: RabbitMqBroker) -> k8s.K8sObject:
        """The worker may reach its broker (in its namespace or another) over AMQP; its HTTP port is
        open to its own namespace and to Prometheus."""
        sources = [{"podSelector": {}}]
        if self.props.monitoring_namespace:
            sources.append(k8s.peer_in_namespace(self.props.monitoring_namespace, k8s.PROMETHEUS))
        return k8s.network_policy(
            self.name,
            namespace,
            k8s.selector_for(labels),
            ingress=[{"from": sources, "ports": k8s.tcp_ports(self.props.port)}],
            egress=[{"to": [k8s.peer_pods(broker.pod_labels) if broker.namespace == namespace else
                            k8s.peer_in_namespace(broker.namespace, broker.pod_labels)],
                     "ports": k8s.tcp_ports(*broker.amqp_ports)}],
        )

    def queue_autoscaler(
        self, namespace: str, labels: dict[str, str], broker: RabbitMqBroker, scaling: QueueAutoscalingConfig,
        tenant: BrokerTenant | None = None,
    ) -> list[k8s.K8sObject]:
        """A KEDA ScaledObject on the worker's queue depth (on its team's virtual host), authenticated
        by the broker's ClusterTriggerAuthentication (KEDA reads Secrets only in its own namespace)."""
        trigger = {
            "protocol": "amqp",
            "queueName": self.props.messaging.queue,
            "mode": "QueueLength",
            "value": str(scaling.queue_length),
        }
        if tenant is not None:
            trigger["vhostName"] = tenant.vhost
        scaled = {
            "apiVersion": "keda.sh/v1alpha1",
            "kind": "ScaledObject",
            "metadata": k8s.metadata(self.name, namespace, labels),
            "spec": {
                "scaleTargetRef": {"name": self.name},
                "minReplicaCount": self.props.replicas,
                "maxReplicaCount": scaling.max_replicas,
                "pollingInterval": scaling.polling_interval_seconds,
                "cooldownPeriod": scaling.cooldown_seconds,
                "triggers": [
                    {
                        "type": "rabbitmq",
                        "metadata": trigger,
                        "authenticationRef": {"name": keda.scaler_auth_name(broker.namespace),
                                              "kind": "ClusterTriggerAuthentication"},
                    }
                ],
            },
        }
        return [scaled]

    @staticmethod
    def broker_env(broker: RabbitMqBroker, messaging: QueueBinding, tenant: BrokerTenant | None = None) -> dict[str, str]:
        """Connection and topology settings every worker gets from its broker: a broker that
        declares the topology itself leaves Burrow's roles only a check that it exists; a team's
        worker declares its own on the team's virtual host."""
        return {
            "RABBITMQ_TOPOLOGY": "passive" if broker.users_by_role and tenant is None else "declare",
            "RABBITMQ_HOST": broker.host,
            "RABBITMQ_PORT": str(broker.port),
            "RABBITMQ_VHOST": tenant.vhost if tenant else VHOST,
            "RABBITMQ_EXCHANGE": messaging.exchange,
            "RABBITMQ_QUEUE": messaging.queue,
            "RABBITMQ_ROUTING_KEY": messaging.routing_key,
        }
