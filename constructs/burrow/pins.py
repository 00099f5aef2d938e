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
    version="88.5.3",
    source="prometheus-community/helm-charts",
    tag="kube-prometheus-stack-{version}",
    why="Prometheus Operator 0.93 and Grafana 13 (its subchart now from grafana-community); Grafana's admin password "
    "comes from Burrow's Secret (existingSecret), so 79's removed default password does not touch it.",
    crds="In its crds subchart's crds/ folder. " + CRDS_FOLDER + " Majors 70-88 raise the Prometheus Operator CRDs: "
    "`kubectl apply --server-side --force-conflicts` the crds of the new version, then upgrade the chart.",
)
LOKI = ChartPin(
    chart="loki",
    repository="https://grafana-community.github.io/helm-charts",
    version="18.11.0",
    source="grafana-community/helm-charts",
    tag="loki-{version}",
    why="Loki 3.7 single binary on a filesystem store, from the community chart: grafana/loki's own chart is for "
    "Grafana Enterprise Logs only from 7.0, and the open-source chart continues in grafana-community/helm-charts.",
)
ALLOY = ChartPin(
    chart="alloy",
    repository="https://grafana.github.io/helm-charts",
    version="1.11.1",
    source="grafana/alloy",
    tag="helm-chart/{version}",
    why="Grafana Alloy 1.18, Promtail's successor (Promtail is end-of-life since 2026-03-02), tailing pod logs "
    "through the Kubernetes API: no hostPath, no root.",
    crds="None used: Burrow turns its PodLogs CRD subchart off (crds.create).",
)
KEDA = ChartPin(
    chart="keda",
    repository="https://kedacore.github.io/charts",
    version="2.20.2",
    source="kedacore/charts",
    tag="v{version}",
    why="KEDA 2.20, the ScaledObject CRDs the consumer's autoscaling uses; supports Kubernetes 1.35.",
    crds="Templated: upgraded with the chart.",
)
METRICS_SERVER = ChartPin(
    chart="metrics-server",
    repository="https://kubernetes-sigs.github.io/metrics-server/",
    version="3.13.1",
    source="kubernetes-sigs/metrics-server",
    tag="metrics-server-helm-chart-{version}",
    why="metrics-server 0.8.1, the resource metrics API the HPAs read.",
)
EXTERNAL_SECRETS = ChartPin(
    chart="external-secrets",
    repository="https://charts.external-secrets.io",
    version="2.8.0",
    source="external-secrets/external-secrets",
    tag="helm-chart-{version}",
    why="One minor behind on purpose: 2.8 is the newest release whose support table lists Kubernetes 1.35 (2.9 lists "
    "1.36 only). Serves external-secrets.io/v1 and generators.external-secrets.io/v1alpha1, the APIs Burrow writes.",
    crds="Templated (installCRDs): upgraded with the chart.",
)
VELERO = ChartPin(
    chart="velero",
    repository="https://vmware-tanzu.github.io/helm-charts",
    version="11.4.0",
    source="vmware-tanzu/helm-charts",
    tag="velero-{version}",
    why="Velero 1.17.1 with the AWS plugin v1.13 (its line for 1.17), one minor behind on purpose: 12.x runs Velero "
    "1.18, whose plugin line v1.14 has only a release candidate (v1.14.0-rc.1) in velero-plugin-for-aws.",
    crds="In crds/, upgraded by the chart's own hook Job (upgradeCRDs) on every chart upgrade.",
)
KARPENTER = ChartPin(
    chart="karpenter",
    repository="oci://public.ecr.aws/karpenter",
    version="1.14.1",
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
        ALLOY,
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
