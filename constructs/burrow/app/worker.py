"""`QueueWorker`: a service that talks to a `RabbitMqBroker` (Burrow's producer and consumer).

It builds the workload's Kubernetes objects once, in native shape, and delivers them
as one release of Burrow's object chart. The container contract (port, probes,
environment variables) is the one `apps/` implements; a test checks both sides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from cdktf import ITerraformDependable
from pydantic import Field, model_validator

from burrow.addons import keda
from burrow.app.namespace import AppNamespace
from burrow.app.rabbitmq import RabbitMqBroker
from burrow.config.schema import (
    AlertThresholds,
    CpuAutoscalingConfig,
    Image,
    MessagingConfig,
    Model,
    QueueAutoscalingConfig,
    Resources,
)
from burrow.errors import PropsError
from burrow.k8s import objects as k8s
from burrow.k8s.objects import EnvFromSecret
from burrow.k8s.release import DeliversObjects, KubernetesObjects
from burrow.monitoring.objects import service_monitor
from burrow.monitoring.rules import Alert, consumer_alerts, producer_alerts, prometheus_rule, workload_alerts
from burrow.policy.facts import PolicyFacts
from burrow.policy.guardrails import Guardrails
from constructs import Construct

HTTP_PORT = 5000
LIVENESS_PATH = "/health"
READINESS_PATH = "/ready"
# The consumer's processed-id log (duplicate recognition across container restarts) lives on an
# emptyDir: it survives a crash or OOM kill of the container, not the pod's replacement.
STATE_DIR = "/var/lib/burrow"
PROCESSED_LOG = f"{STATE_DIR}/processed.jsonl"


class QueueWorkerProps(Model):
    """Props of `QueueWorker`."""

    #: Component label and the service's role; also the default object name.
    role: Literal["producer", "consumer"]
    image: Image
    #: default: 2 (two pods survive a node drain)
    replicas: int = Field(default=2, ge=1, le=100)
    resources: Resources
    messaging: MessagingConfig = MessagingConfig()
    #: Extra environment variables (role settings such as PUBLISH_RATE or PREFETCH_COUNT).
    settings: Mapping[str, str] = Field(default_factory=dict)
    #: Seconds the service takes to finish in-flight work after SIGTERM (SHUTDOWN_TIMEOUT).
    drain_seconds: int = Field(default=20, ge=1, le=600)
    #: Seconds Kubernetes waits after SIGTERM before SIGKILL; must exceed drain_seconds.
    termination_grace_seconds: int = Field(default=30, ge=2, le=3600)
    #: The application that the worker belongs to (app.kubernetes.io/part-of).
    part_of: str = "burrow"
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
    #: Alert thresholds; set, the worker ships its PrometheusRule (restarts, not ready, role alerts).
    alerts: AlertThresholds | None = None
    #: Variables read from Secrets: name -> (Secret, key), e.g. the public producer's PUBLISH_TOKEN.
    secret_settings: Mapping[str, tuple[str, str]] = Field(default_factory=dict)
    #: Secrets read as files that follow the Secret's changes without a restart: variable ->
    #: Secret, mounted read-only; the variable names the directory (e.g. PUBLISH_TOKENS_DIR).
    secret_dirs: Mapping[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _grace_exceeds_drain(self) -> QueueWorkerProps:
        if self.termination_grace_seconds <= self.drain_seconds:
            raise ValueError(
                f"termination_grace_seconds ({self.termination_grace_seconds}) must exceed "
                f"drain_seconds ({self.drain_seconds}), or Kubernetes kills the pod mid-drain"
            )
        return self


class QueueWorker(DeliversObjects, Construct):
    """A producer or consumer Deployment wired to `broker`, with its Service and ServiceAccount.

    Escape hatches: `objects` (the Kubernetes objects, native shape), `deployment`
    (the Deployment object), `delivery` (their object release) and `release` (its
    helm_release). Edits made before synth are delivered and checked by the guardrails.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        namespace: AppNamespace,
        broker: RabbitMqBroker,
        props: QueueWorkerProps,
        depends_on: Sequence[ITerraformDependable] = (),
    ) -> None:
        """`depends_on`: what the workload's release waits for besides its namespace and broker (the
        release of a Secret that `secret_settings` read, say)."""
        super().__init__(scope, id)
        Guardrails.of(self)
        reserved = sorted(set(props.settings) & set(self.broker_env(broker, props.messaging)))
        if reserved:
            raise PropsError(self.node.path, "settings", reserved, "these variables are set from the broker")
        if broker.users_by_role and props.messaging != broker.props.messaging:
            raise PropsError(self.node.path, "messaging", props.messaging.model_dump(),
                             f"the broker declares the topology from its own messaging props "
                             f"({broker.props.messaging.model_dump()}) and this worker may not declare any: use the same")
        self.props = props
        self.name = props.role
        labels = k8s.labels_for(self.name, props.part_of, props.role)
        consumer = props.role == "consumer"
        container = k8s.ContainerSpec(
            name=self.name,
            image=props.image.reference,
            port=HTTP_PORT,
            resources=props.resources.model_dump(),
            env={
                "HTTP_PORT": str(HTTP_PORT),
                "SHUTDOWN_TIMEOUT": str(props.drain_seconds),
                **self.broker_env(broker, props.messaging),
                **({"PROCESSED_LOG": PROCESSED_LOG} if consumer else {}),
                **props.settings,
            },
            state_dir=STATE_DIR if consumer else None,
            secret_env=[*broker.credentials_env(props.role, "RABBITMQ_USERNAME", "RABBITMQ_PASSWORD"),
                        *(EnvFromSecret(var, secret, key) for var, (secret, key) in props.secret_settings.items())],
            secret_dirs=props.secret_dirs,
            liveness=k8s.HttpProbe(LIVENESS_PATH, period_seconds=10, failure_threshold=3),
            readiness=k8s.HttpProbe(READINESS_PATH, period_seconds=5, failure_threshold=2),
            startup=k8s.HttpProbe(LIVENESS_PATH, period_seconds=2, failure_threshold=30),
        )
        ns = namespace.name
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
            k8s.service(self.name, ns, labels, HTTP_PORT),
            self.network_policy(ns, labels, broker),
        ]
        if props.replicas >= 2:
            objects.append(k8s.pod_disruption_budget(self.name, ns, labels))
        if isinstance(scaling, CpuAutoscalingConfig):
            objects.append(
                k8s.cpu_autoscaler(self.name, ns, labels, props.replicas, scaling.max_replicas, scaling.target_cpu_percent)
            )
        elif isinstance(scaling, QueueAutoscalingConfig):
            objects.extend(self.queue_autoscaler(ns, labels, broker, scaling))
        if props.monitoring_namespace:
            objects.append(service_monitor(self.name, ns, labels))
        if props.alerts:
            objects.append(prometheus_rule(self.name, ns, labels, f"burrow.{self.name}", self.alert_rules(ns)))
        self.delivery = KubernetesObjects(
            self,
            "objects",
            release_name=self.name,
            namespace=ns,
            objects=objects,
            depends_on=[namespace.resource, broker.release, *depends_on],
        )
        self.release = self.delivery.release

    def policy_facts(self) -> PolicyFacts:
        """What the guardrails check: the objects as delivered, after every escape-hatch edit."""
        return PolicyFacts("workload", self.delivery.objects)

    def alert_rules(self, namespace: str) -> list[Alert]:
        """What to alert on for this worker: restarts and readiness always, then its role's own."""
        thresholds = self.props.alerts
        assert thresholds is not None
        alerts = workload_alerts(self.name, namespace, thresholds)
        if self.props.role == "producer":
            alerts += producer_alerts(self.name, namespace)
        else:
            alerts += consumer_alerts(self.name, namespace, self.props.messaging.queue, thresholds)
        return alerts

    def network_policy(self, namespace: str, labels: dict[str, str], broker: RabbitMqBroker) -> k8s.K8sObject:
        """The worker may reach its broker over AMQP; its HTTP port is open to its own namespace and
        to Prometheus."""
        sources = [{"podSelector": {}}]
        if self.props.monitoring_namespace:
            sources.append(k8s.peer_in_namespace(self.props.monitoring_namespace, k8s.PROMETHEUS))
        return k8s.network_policy(
            self.name,
            namespace,
            k8s.selector_for(labels),
            ingress=[{"from": sources, "ports": k8s.tcp_ports(HTTP_PORT)}],
            egress=[{"to": [k8s.peer_pods(broker.pod_labels)], "ports": k8s.tcp_ports(*broker.amqp_ports)}],
        )

    def queue_autoscaler(
        self, namespace: str, labels: dict[str, str], broker: RabbitMqBroker, scaling: QueueAutoscalingConfig
    ) -> list[k8s.K8sObject]:
        """A KEDA ScaledObject on the worker's queue depth, authenticated by the broker's
        ClusterTriggerAuthentication (KEDA reads Secrets only in its own namespace)."""
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
                        "metadata": {
                            "protocol": "amqp",
                            "queueName": self.props.messaging.queue,
                            "mode": "QueueLength",
                            "value": str(scaling.queue_length),
                        },
                        "authenticationRef": {"name": keda.scaler_auth_name(namespace),
                                              "kind": "ClusterTriggerAuthentication"},
                    }
                ],
            },
        }
        return [scaled]

    @staticmethod
    def broker_env(broker: RabbitMqBroker, messaging: MessagingConfig) -> dict[str, str]:
        """Connection and topology settings every worker gets from its broker: a broker that
        declares the topology itself leaves the workers only a check that it exists."""
        return {
            "RABBITMQ_TOPOLOGY": "passive" if broker.users_by_role else "declare",
            "RABBITMQ_HOST": broker.host,
            "RABBITMQ_PORT": str(broker.port),
            "RABBITMQ_VHOST": "/",
            "RABBITMQ_EXCHANGE": messaging.exchange,
            "RABBITMQ_QUEUE": messaging.queue,
            "RABBITMQ_ROUTING_KEY": messaging.routing_key,
        }
