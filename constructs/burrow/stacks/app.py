"""`AppLayer`: namespace, RabbitMQ and the producer/consumer services of one environment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from burrow.app.namespace import AppNamespace
from burrow.app.rabbitmq import RabbitMqBroker, RabbitMqBrokerProps
from burrow.app.worker import QueueWorker, QueueWorkerProps
from burrow.config.schema import EnvironmentConfig
from burrow.spi import ClusterInfo
from burrow.stacks.base import BurrowStack
from constructs import Construct


class AppLayer(BurrowStack):
    """The `<env>-app` stack. `rabbitmq_values` are the environment's Bitnami values documents."""

    def __init__(
        self,
        scope: Construct,
        env: EnvironmentConfig,
        *,
        cluster: ClusterInfo,
        rabbitmq_values: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        super().__init__(scope, env, "app")
        cluster.configure_providers(self)
        self.namespace = AppNamespace(self, "namespace", name=env.namespace)
        self.broker = RabbitMqBroker(
            self,
            "rabbitmq",
            namespace=self.namespace,
            props=RabbitMqBrokerProps(**env.rabbitmq.model_dump(), values=list(rabbitmq_values)),
        )
        apps = env.apps
        self.producer = QueueWorker(
            self,
            "producer",
            namespace=self.namespace,
            broker=self.broker,
            props=QueueWorkerProps(
                role="producer",
                image=apps.producer.image,
                replicas=apps.producer.replicas,
                resources=apps.producer.resources,
                messaging=env.messaging,
                settings={"PUBLISH_RATE": str(apps.producer.publish_rate)},
            ),
        )
        self.consumer = QueueWorker(
            self,
            "consumer",
            namespace=self.namespace,
            broker=self.broker,
            props=QueueWorkerProps(
                role="consumer",
                image=apps.consumer.image,
                replicas=apps.consumer.replicas,
                resources=apps.consumer.resources,
                messaging=env.messaging,
                settings={"PREFETCH_COUNT": str(apps.consumer.prefetch)},
            ),
        )

    @property
    def workers(self) -> tuple[QueueWorker, ...]:
        return (self.producer, self.consumer)
