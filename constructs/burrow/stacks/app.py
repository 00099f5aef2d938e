"""`AppLayer`: namespace, RabbitMQ and the producer/consumer services of one environment."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from burrow.addons.external_secrets import external_secret
from burrow.addons.karpenter import workload_node_selector
from burrow.app.broker_users import ROLES, secret_key
from burrow.app.federation import BrokerFederation, FederationUpstream
from burrow.app.ingress import PublicIngress
from burrow.app.namespace import AppNamespace
from burrow.app.rabbitmq import RabbitMqBroker, RabbitMqBrokerProps
from burrow.app.worker import QueueWorker
from burrow.config.schema import ConsumerConfig, EnvironmentConfig, NamespaceQuota, ProducerConfig, Tier
from burrow.k8s.objects import MANAGED_BY
from burrow.k8s.release import KubernetesObjects
from burrow.monitoring.dashboard import dashboard
from burrow.monitoring.objects import alertmanager_config, dashboard_config_map, dashboard_reader
from burrow.spi import ClusterInfo, SecretsAccess
from burrow.stacks.base import BurrowStack
from constructs import Construct

PUBLISH_AUTH = "producer-auth"  # the Secret holding the public producer's bearer token
PUBLISH_TOKEN_KEY = "publish-token"
PREVIOUS_TOKEN_KEY = "previous-publish-token"  # still accepted during a rotation (make rotate-token)


def broker_host(env: EnvironmentConfig, region: str) -> str:
    """The name a region's broker answers to for the other regions (its internal load balancer)."""
    return f"rabbitmq.{region}.{env.ingress.zone}"


def broker_federation(env: EnvironmentConfig, secrets: SecretsAccess) -> BrokerFederation | None:
    """This region's side of the environment's federation, or None when it takes no part."""
    peers = env.federation_peers
    if not peers:
        return None
    config = env.federation
    return BrokerFederation(
        mode=config.mode, region=env.aws.region, broker_host=broker_host(env, env.aws.region),
        upstreams=[FederationUpstream(region=r, host=broker_host(env, r)) for r in peers],
        load_balancer_cidrs=env.network.private_subnet_cidrs,
        peer_cidrs=[cidr for r in peers for cidr in env.in_region(r).network.private_subnet_cidrs],
        max_hops=config.max_hops, prefetch=config.prefetch, reconnect_delay_seconds=config.reconnect_delay_seconds,
        credentials_key=secrets.secret("rabbitmq"), federation_key=secrets.secret("federation"),
    )


class AppLayer(BurrowStack):
    """The `<env>-app` stack. `rabbitmq_values` are the environment's Bitnami values documents."""

    def __init__(
        self,
        scope: Construct,
        env: EnvironmentConfig,
        *,
        cluster: ClusterInfo,
        rabbitmq_values: Sequence[Mapping[str, Any]] = (),
        name: str | None = None,
        state_key: str | None = None,
        namespace_labels: Mapping[str, str] | None = None,
        quota: NamespaceQuota | None = None,
        in_cluster_credentials: bool = False,
    ) -> None:
        """`name`/`state_key` replace the stack's `<env>-app` and its state key; `namespace_labels` and
        `quota` go to the namespace; `in_cluster_credentials` has External Secrets generate the
        broker's credentials in the cluster (previews)."""
        super().__init__(scope, env, "app", name=name, state_key=state_key)
        cluster.configure_providers(self)
        self.cluster = cluster
        self.monitoring_namespace = env.monitoring.namespace if env.monitoring.enabled else None
        self.namespace = AppNamespace(
            self, "namespace", {"name": env.namespace, "labels": namespace_labels or {}, "quota": quota}
        )
        self.broker = RabbitMqBroker(
            self,
            "rabbitmq",
            namespace=self.namespace,
            props=RabbitMqBrokerProps(
                **env.rabbitmq.model_dump(),
                values=list(rabbitmq_values),
                zone_spread=cluster.multi_zone,
                node_selector=workload_node_selector(env.karpenter, broker=True),
                monitoring_namespace=self.monitoring_namespace,
                keda_namespace="keda" if env.addons.keda.enabled else None,
                api_server_cidrs=env.network.private_subnet_cidrs if env.on_aws else (),
                alerts=env.monitoring.enabled,
                credentials_key=cluster.secrets.secret("rabbitmq") if cluster.secrets else None,
                user_keys={role: cluster.secrets.secret(secret_key(role)) for role in ROLES} if cluster.secrets else {},
                generate_credentials_in_cluster=in_cluster_credentials,
                federation=broker_federation(env, cluster.secrets) if cluster.secrets else None,
                messaging=env.messaging,
            ),
        )
        apps = env.apps
        public = cluster.edge is not None and env.ingress.enabled
        self.publish_auth = self._publish_auth(env) if public and env.ingress.authentication == "token" else None
        self.producer = self._worker(
            env, "producer", apps.producer, {"PUBLISH_RATE": str(apps.producer.publish_rate)},
            secret_dirs={"PUBLISH_TOKENS_DIR": PUBLISH_AUTH} if self.publish_auth else {},
            depends_on=[self.publish_auth.release] if self.publish_auth else [],
        )
        self.consumer = self._worker(env, "consumer", apps.consumer, {"PREFETCH_COUNT": str(apps.consumer.prefetch)})
        self.monitoring = self._monitoring(env) if env.monitoring.enabled else None
        self.ingress = self._ingress(env) if public else None

    def _publish_auth(self, env: EnvironmentConfig) -> KubernetesObjects:
        """The Secret with the public producer's bearer tokens (current and previous), built by
        External Secrets from the environment's one token secret (the primary region's, or this
        region's replica of it). The producer mounts it and re-reads it when it changes."""
        assert self.cluster.secrets is not None  # a public producer is an EKS environment's (configuration checks)
        return KubernetesObjects(
            self,
            "publish-auth",
            {
                "release_name": "producer-auth",
                "namespace": env.namespace,
                "objects": [external_secret(PUBLISH_AUTH, env.namespace, self.cluster.secrets.secret("producer"),
                                            {PUBLISH_TOKEN_KEY: "{{ .publish_token }}",
                                             PREVIOUS_TOKEN_KEY: "{{ .previous_publish_token }}"})],
            },
            depends_on=[self.namespace.resource],
        )

    def _ingress(self, env: EnvironmentConfig) -> PublicIngress:
        """The producer's public Ingress, and the policy letting the load balancer reach its pods."""
        assert self.cluster.edge is not None
        ingress = env.ingress
        return PublicIngress(self, "ingress", {
            "edge": self.cluster.edge, "load_balancer_cidrs": env.network.public_subnet_cidrs, "tls": ingress.tls,
            "ssl_policy": ingress.ssl_policy, "allowed_cidrs": ingress.allowed_cidrs,
        }, namespace=self.namespace, producer=self.producer)

    def _monitoring(self, env: EnvironmentConfig) -> KubernetesObjects:
        """The stack's dashboard and, when a receiver is configured, where its alerts go."""
        labels = {**MANAGED_BY, "app.kubernetes.io/part-of": "burrow"}
        board = dashboard(env.namespace, env.messaging.queue, self.consumer.name, self.broker.props.release_name)
        objects = [dashboard_config_map("burrow-dashboard", env.namespace, labels, board),
                   *dashboard_reader(env.namespace, labels, env.monitoring.namespace)]
        if env.monitoring.receiver:
            objects.append(alertmanager_config(env.namespace, labels, env.monitoring.receiver))
        return KubernetesObjects(
            self,
            "monitoring",
            {"release_name": "burrow-monitoring", "namespace": env.namespace, "objects": objects},
            depends_on=[self.namespace.resource],
        )

    def _worker(
        self, env: EnvironmentConfig, role: str, config: ProducerConfig | ConsumerConfig, settings: dict[str, str],
        secret_dirs: dict[str, str] | None = None, depends_on: Sequence = (),
    ) -> QueueWorker:
        """Burrow's producer or consumer (`role`, also its construct id and name) from the environment."""
        preset = QueueWorker.producer if role == "producer" else QueueWorker.consumer
        props = {
            "image": config.image,
            "replicas": config.replicas,
            "resources": config.resources,
            "messaging": env.messaging,
            "settings": settings,
            "autoscaling": config.autoscaling,
            "hard_spread": env.tier == Tier.PRODUCTION,
            "zone_spread": self.cluster.multi_zone,
            "node_selector": workload_node_selector(env.karpenter),
            "monitoring_namespace": self.monitoring_namespace,
            "alerts": env.monitoring.alerts if env.monitoring.enabled else None,
            "secret_dirs": secret_dirs or {},
        }
        return preset(self, role, namespace=self.namespace, broker=self.broker, props=props, depends_on=depends_on)

    @property
    def workers(self) -> tuple[QueueWorker, ...]:
        return (self.producer, self.consumer)
