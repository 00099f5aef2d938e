"""`AddOnsLayer`: the cluster-wide add-ons, planned only after the cluster exists."""

from __future__ import annotations

from collections.abc import Sequence

from burrow.addons.base import ClusterAddOn
from burrow.addons.cert_manager import CA_SECRET_KEY, CertManagerAddOn, FederationCa
from burrow.addons.edge import external_dns, load_balancer_controller
from burrow.addons.external_secrets import ExternalSecretsAddOn
from burrow.addons.flux import FluxAddOn
from burrow.addons.karpenter import KarpenterAddOn
from burrow.addons.keda import keda, scaler_credentials
from burrow.addons.metrics_server import metrics_server
from burrow.addons.monitoring import MonitoringAddOn, alloy, loki
from burrow.addons.storage import EbsStorageClasses
from burrow.addons.velero import VeleroAddOn
from burrow.app.broker_users import secret_key, user_name
from burrow.app.federation import CLUSTER_DOMAINS
from burrow.app.rabbitmq import RELEASE_NAME, amqp_uri, service_host
from burrow.config.schema import EnvironmentConfig
from burrow.pins import (
    ALLOY,
    AWS_LOAD_BALANCER_CONTROLLER,
    CERT_MANAGER,
    EXTERNAL_DNS,
    EXTERNAL_SECRETS,
    FLUX,
    KARPENTER,
    KEDA,
    KUBE_PROMETHEUS_STACK,
    LOKI,
    METRICS_SERVER,
    VELERO,
)
from burrow.spi import ClusterInfo
from burrow.stacks.base import BurrowStack
from constructs import Construct


def configured_addons(env: EnvironmentConfig, cluster: ClusterInfo | None = None) -> list[ClusterAddOn]:
    """The add-ons an environment's configuration turns on, in install order. A cluster whose
    credentials live in AWS Secrets Manager gets the External Secrets Operator first, and, when its
    region federates, cert-manager with the environment's federation CA (made in the primary region,
    read from Secrets Manager in the others); a cluster whose cloud side made room for them gets
    Karpenter and Velero. Each chart gets the digests of its images the environment has
    (`addons.image_digests`, filled in from a release)."""
    digests = env.addons.image_digests
    chosen: list[ClusterAddOn] = []
    if cluster is not None and cluster.secrets is not None:
        chosen.append(ExternalSecretsAddOn(cluster.secrets, digests=digests.get(EXTERNAL_SECRETS.chart, {})))
        if env.federation_peers:
            assert env.ingress.zone is not None  # federation needs a zone (configuration checks)
            ca = FederationCa(secret_key=cluster.secrets.secret(CA_SECRET_KEY), signs=env.is_primary,
                              common_name=f"Burrow {env.name} federation CA",
                              # the brokers' names: rabbitmq.<region>.<zone> and their in-cluster names
                              permitted_domains=(env.ingress.zone, *CLUSTER_DOMAINS))
            chosen.append(CertManagerAddOn(ca=ca, digests=digests.get(CERT_MANAGER.chart, {})))
    if env.on_aws:
        chosen.append(EbsStorageClasses())
    if env.addons.metrics_server.enabled:
        chosen.append(metrics_server(digests.get(METRICS_SERVER.chart)))
    cluster_cidrs = tuple(env.network.private_subnet_cidrs) if env.on_aws else ()
    if env.addons.keda.enabled:
        scalers = ()
        if cluster is not None and cluster.secrets is not None:  # else the app stack writes KEDA's Secret
            # the scaler logs in as the broker's monitoring user (burrow.app.broker_users)
            uri = amqp_uri(user_name("monitoring"), "{{ .password }}", service_host(RELEASE_NAME, env.namespace))
            scalers = tuple(scaler_credentials(env.namespace, cluster.secrets.secret(secret_key("monitoring")), uri))
        chosen.append(keda(scalers, digests.get(KEDA.chart)))
    if env.monitoring.enabled:
        chosen.append(MonitoringAddOn(env.monitoring, dashboard_namespaces=(env.namespace,), cluster_cidrs=cluster_cidrs,
                                      digests=digests.get(KUBE_PROMETHEUS_STACK.chart, {})))
        if env.monitoring.loki.enabled:
            chosen += [loki(env.monitoring, digests.get(LOKI.chart)), alloy(env.monitoring, digests.get(ALLOY.chart))]
    autoscaling = cluster.node_autoscaling if cluster is not None else None
    if autoscaling is not None and env.karpenter is not None:
        chosen.append(KarpenterAddOn(autoscaling, env.karpenter, env.name, monitoring=env.monitoring.enabled,
                                     digests=digests.get(KARPENTER.chart, {})))
    if cluster is not None and cluster.edge is not None:
        chosen += [load_balancer_controller(cluster.edge, env.monitoring.enabled, env.namespace,
                                            digests.get(AWS_LOAD_BALANCER_CONTROLLER.chart)),
                   external_dns(cluster.edge, env.monitoring.enabled, digests.get(EXTERNAL_DNS.chart))]
    if cluster is not None and cluster.backups is not None:
        chosen.append(VeleroAddOn(cluster.backups, env.backups, env.namespace, monitoring=env.monitoring.enabled,
                                  digests=digests.get(VELERO.chart, {})))
    if env.delivery == "gitops" and env.gitops is not None:
        chosen.append(FluxAddOn(env.gitops, env.name, env.namespace, digests=digests.get(FLUX.chart, {})))  # last: what it syncs needs every CRD above
    return chosen


class AddOnsLayer(BurrowStack):
    """The `<env>-addons` stack: each add-on's `deploy` against `cluster`, whichever provider made it."""

    def __init__(
        self, scope: Construct, env: EnvironmentConfig, *, cluster: ClusterInfo, addons: Sequence[ClusterAddOn]
    ) -> None:
        super().__init__(scope, env, "addons")
        cluster.configure_providers(self)
        self.addons = {addon.name: addon.deploy(self, cluster) for addon in addons}
