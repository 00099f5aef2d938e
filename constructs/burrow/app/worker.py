"""`QueueWorker`: a service that talks to a `RabbitMqBroker` (Burrow's producer and consumer).

It builds the workload's Kubernetes objects once, in native shape, and delivers them
as one release of Burrow's object chart. The container contract (port, probes,
environment variables) is the one `apps/` implements; a test checks both sides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field, model_validator

from burrow.app.namespace import AppNamespace
from burrow.app.rabbitmq import RabbitMqBroker
from burrow.config.schema import Image, MessagingConfig, Model, Resources
from burrow.errors import PropsError
from burrow.k8s import objects as k8s
from burrow.k8s.release import KubernetesObjects
from constructs import Construct

HTTP_PORT = 5000
LIVENESS_PATH = "/health"
READINESS_PATH = "/ready"


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

    @model_validator(mode="after")
    def _grace_exceeds_drain(self) -> QueueWorkerProps:
        if self.termination_grace_seconds <= self.drain_seconds:
            raise ValueError(
                f"termination_grace_seconds ({self.termination_grace_seconds}) must exceed "
                f"drain_seconds ({self.drain_seconds}), or Kubernetes kills the pod mid-drain"
            )
        return self


class QueueWorker(Construct):
    """A producer or consumer Deployment wired to `broker`, with its Service and ServiceAccount.

    Escape hatches: `objects` (the Kubernetes objects, native shape), `deployment`
    (the Deployment object) and `release` (the object chart's helm_release).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        namespace: AppNamespace,
        broker: RabbitMqBroker,
        props: QueueWorkerProps,
    ) -> None:
        super().__init__(scope, id)
        reserved = sorted(set(props.settings) & set(self.broker_env(broker, props.messaging)))
        if reserved:
            raise PropsError(self.node.path, "settings", reserved, "these variables are set from the broker")
        self.props = props
        self.name = props.role
        labels = k8s.labels_for(self.name, props.part_of, props.role)
        container = k8s.ContainerSpec(
            name=self.name,
            image=props.image.reference,
            port=HTTP_PORT,
            resources=props.resources.model_dump(),
            env={
                "HTTP_PORT": str(HTTP_PORT),
                "SHUTDOWN_TIMEOUT": str(props.drain_seconds),
                **self.broker_env(broker, props.messaging),
                **props.settings,
            },
            secret_env=broker.credentials_env("RABBITMQ_USERNAME", "RABBITMQ_PASSWORD"),
            liveness=k8s.HttpProbe(LIVENESS_PATH, period_seconds=10, failure_threshold=3),
            readiness=k8s.HttpProbe(READINESS_PATH, period_seconds=5, failure_threshold=2),
            startup=k8s.HttpProbe(LIVENESS_PATH, period_seconds=2, failure_threshold=30),
        )
        ns = namespace.name
        self.deployment = k8s.deployment(
            self.name, ns, labels, props.replicas, container, props.termination_grace_seconds
        )
        self.objects = (
            k8s.service_account(self.name, ns, labels),
            self.deployment,
            k8s.service(self.name, ns, labels, HTTP_PORT),
        )
        self.release = KubernetesObjects(
            self,
            "objects",
            release_name=self.name,
            namespace=ns,
            objects=self.objects,
            depends_on=[namespace.resource, broker.release],
        ).release

    @staticmethod
    def broker_env(broker: RabbitMqBroker, messaging: MessagingConfig) -> dict[str, str]:
        """Connection and topology settings every worker gets from its broker."""
        return {
            "RABBITMQ_HOST": broker.host,
            "RABBITMQ_PORT": str(broker.port),
            "RABBITMQ_VHOST": "/",
            "RABBITMQ_EXCHANGE": messaging.exchange,
            "RABBITMQ_QUEUE": messaging.queue,
            "RABBITMQ_ROUTING_KEY": messaging.routing_key,
        }
