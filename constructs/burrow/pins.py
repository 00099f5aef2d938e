"""Every third-party Helm chart Burrow installs, pinned in one place.

The add-ons and the RabbitMQ broker read their chart version from here; `make verify-charts`
checks that every chart release it finds is one of these pins, and `make outdated` compares each
pin with the newest release upstream. Renovate updates the `version` lines of this file (its
regex manager in `renovate.json` expects each pin written as `chart=…, repository=…, version=…`
in that order, one per line; a test checks that it matches every pin).
"""

from __future__ import annotations

from dataclasses import dataclass

CRDS_FOLDER = "Helm never upgrades a chart's crds/ folder: apply the new version's CRDs server-side before the chart."


@dataclass(frozen=True)
class ChartPin:
    """One chart at one version, where it is installed from and where its source lives."""

    #: The chart's name in its repository.
    chart: str
    #: The Helm repository (`https://…`) or OCI registry path (`oci://…`) Helm pulls the chart from.
    repository: str
    #: The chart version Burrow installs.
    version: str
    #: The GitHub repository (`owner/name`) holding the chart's source and its release tags.
    source: str
    #: How `source` tags a release of the chart; `{version}` stands for the chart version.
    tag: str
    #: Why this version (and why it stays behind the newest release, where it does).
    why: str
    #: How the chart's CustomResourceDefinitions reach the cluster on an upgrade ("" when it has none).
    crds: str = ""
    #: Other charts released with this one at the same version from the same repository.
    companions: tuple[str, ...] = ()


KUBE_PROMETHEUS_STACK = ChartPin(
    chart="kube-prometheus-stack",
    repository="https://prometheus-community.github.io/helm-charts",
    version="69.4.1",
    source="prometheus-community/helm-charts",
    tag="kube-prometheus-stack-{version}",
    why="Prometheus Operator 0.80; the majors since change CRDs and Grafana's chart, bumped on merged code.",
    crds="In its crds subchart's crds/ folder. " + CRDS_FOLDER,
)
LOKI = ChartPin(
    chart="loki",
    repository="https://grafana.github.io/helm-charts",
    version="6.29.0",
    source="grafana/loki",
    tag="helm-loki-{version}",
    why="Loki 3.4 single binary on a filesystem store. grafana/loki's chart is GEL-only from 7.0; the OSS chart moved "
    "to grafana-community/helm-charts (its repository and source when bumped, on merged code).",
)
PROMTAIL = ChartPin(
    chart="promtail",
    repository="https://grafana.github.io/helm-charts",
    version="6.16.6",
    source="grafana/helm-charts",
    tag="promtail-{version}",
    why="Deprecated upstream (Promtail is end-of-life since 2026-03-02): to be replaced by Grafana Alloy, not bumped.",
)
KEDA = ChartPin(
    chart="keda",
    repository="https://kedacore.github.io/charts",
    version="2.16.1",
    source="kedacore/charts",
    tag="v{version}",
    why="Installs the ScaledObject CRDs the consumer's autoscaling uses; behind (2.20 is newest), bumped on merged code.",
    crds="Templated: upgraded with the chart.",
)
METRICS_SERVER = ChartPin(
    chart="metrics-server",
    repository="https://kubernetes-sigs.github.io/metrics-server/",
    version="3.12.2",
    source="kubernetes-sigs/metrics-server",
    tag="metrics-server-helm-chart-{version}",
    why="metrics-server 0.7.2, the resource metrics API the HPAs read; behind (3.13 is newest), bumped on merged code.",
)
EXTERNAL_SECRETS = ChartPin(
    chart="external-secrets",
    repository="https://charts.external-secrets.io",
    version="0.20.4",
    source="external-secrets/external-secrets",
    tag="helm-chart-{version}",
    why="Serves external-secrets.io/v1, the API Burrow writes; 2.x (1.35 listed from 2.0) is bumped on merged code.",
    crds="Templated (installCRDs): upgraded with the chart.",
)
VELERO = ChartPin(
    chart="velero",
    repository="https://vmware-tanzu.github.io/helm-charts",
    version="11.4.0",
    source="vmware-tanzu/helm-charts",
    tag="velero-{version}",
    why="Velero 1.17.1, matching the AWS plugin v1.13 line; 12.x (Velero 1.18) waits for the plugin line made for it.",
    crds="In crds/, upgraded by the chart's own hook Job (upgradeCRDs) on every chart upgrade.",
)
KARPENTER = ChartPin(
    chart="karpenter",
    repository="oci://public.ecr.aws/karpenter",
    version="1.13.1",
    source="aws/karpenter-provider-aws",
    tag="v{version}",
    why="Karpenter's chart and its CRD chart move together; supports Kubernetes 1.35 (its compatibility matrix).",
    companions=("karpenter-crd",),
    crds="Templated in the karpenter-crd chart, its own release upgraded before the controller (installed with skip_crds).",
)
FLUX = ChartPin(
    chart="flux2",
    repository="https://fluxcd-community.github.io/helm-charts",
    version="2.18.3",
    source="fluxcd-community/helm-charts",
    tag="flux2-{version}",
    why="Flux 2.8.5, for environments delivered through GitOps.",
    crds="Templated: upgraded with the chart.",
)
AWS_LOAD_BALANCER_CONTROLLER = ChartPin(
    chart="aws-load-balancer-controller",
    repository="https://aws.github.io/eks-charts",
    version="3.5.0",
    source="kubernetes-sigs/aws-load-balancer-controller",
    tag="v{version}",
    why="AWS Load Balancer Controller v3.5.0 (the chart is versioned with the controller).",
    crds="In crds/ (TargetGroupBinding, IngressClassParams, Gateway API). " + CRDS_FOLDER,
)
EXTERNAL_DNS = ChartPin(
    chart="external-dns",
    repository="https://kubernetes-sigs.github.io/external-dns/",
    version="1.21.1",
    source="kubernetes-sigs/external-dns",
    tag="external-dns-helm-chart-{version}",
    why="external-dns 0.21.0, the regions' names in the environment's zone.",
    crds="In crds/ (DNSEndpoint). " + CRDS_FOLDER,
)
RABBITMQ = ChartPin(
    chart="rabbitmq",
    repository="oci://registry-1.docker.io/bitnamicharts",
    version="16.0.14",
    source="bitnami/charts",
    tag="rabbitmq/{version}",
    why="RabbitMQ 4.1 with quorum queues, run from the frozen bitnamilegacy images (Bitnami's public images "
    "stopped in 2025); 16.0.16 is the newest chart in bitnami/charts.",
)

#: Every pin, by chart name.
PINS: dict[str, ChartPin] = {
    pin.chart: pin
    for pin in (
        KUBE_PROMETHEUS_STACK,
        LOKI,
        PROMTAIL,
        KEDA,
        METRICS_SERVER,
        EXTERNAL_SECRETS,
        VELERO,
        KARPENTER,
        FLUX,
        AWS_LOAD_BALANCER_CONTROLLER,
        EXTERNAL_DNS,
        RABBITMQ,
    )
}


def pin_of(chart: str) -> ChartPin | None:
    """The pin that installs `chart` (itself or as a companion), if any."""
    return PINS.get(chart) or next((pin for pin in PINS.values() if chart in pin.companions), None)
