"""Every third-party Helm chart Burrow installs, pinned in one place.

The add-ons and the RabbitMQ broker read their chart version from here; `make verify-charts`
checks that every chart release it finds is one of these pins, and `make outdated` compares each
pin with the newest release upstream. Renovate updates the `version` lines of this file (its
regex manager in `renovate.json` expects each pin written as `chart=…, repository=…, version=…`
in that order, one per line; a test checks that it matches every pin).

Each pin also lists the images its chart deploys with Burrow's values (`images`, subcharts
included): what production pins by digest. `make release` resolves each `reference` to the digest
it names (`burrow.config.release.third_party_images`), the add-on sets that digest at the image's
values paths (`ChartImage.values`), the guardrail `image-digest` refuses a production release of
the chart that lacks one, and `make verify-charts` checks that the real chart, rendered with those
values, runs no container image that is not pinned by digest. A new pin declares its images the
same way: one `ChartImage` per image its chart renders (read its templates at the pinned tag for
the value that carries a digest), nothing else to change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

#: How a chart takes an image's digest at a values path:
#: `digest`: "sha256:<hex>" (most charts' `image.digest`);
#: `sha`: the hex alone (the chart's template writes `@sha256:` itself: kube-prometheus-stack, Grafana);
#: `tag`: "<tag>@sha256:<hex>", for a chart with no digest value whose template renders `repository:tag`;
#: `image`: the whole reference with its digest, for an image Burrow's own values name (an init container).
DigestForm = Literal["digest", "sha", "tag", "image"]
_HEX = re.compile(r"^sha256:([0-9a-f]{64})$")
_PINNED = {
    "digest": re.compile(r"^sha256:[0-9a-f]{64}$"),
    "sha": re.compile(r"^[0-9a-f]{64}$"),
    "tag": re.compile(r"@sha256:[0-9a-f]{64}$"),
    "image": re.compile(r"@sha256:[0-9a-f]{64}$"),
}


@dataclass(frozen=True)
class ChartImage:
    """One image a pinned chart deploys with Burrow's values, and where the chart takes its digest."""

    #: A short name, unique in its chart (`grafana`, `config-reloader`): how a release's digest reaches it.
    name: str
    #: The image as the chart renders it at the pin, `registry/repository:tag` (the tag the chart
    #: defaults to, usually its appVersion).
    reference: str
    #: Dotted values paths (`grafana.image.sha`; `[n]` indexes a list) that carry the digest, one per
    #: place the chart renders the image (External Secrets' three deployments share one image).
    values: tuple[str, ...]
    #: What the value at those paths holds (`DigestForm`).
    form: DigestForm = "digest"

    def value(self, digest: str) -> str:
        """What the `values` paths get for `digest` (`sha256:…`)."""
        match = _HEX.match(digest)
        if match is None:
            raise ValueError(f"{self.name}: {digest!r} is not a digest (sha256: and 64 hex digits)")
        return {"digest": digest, "sha": match.group(1), "tag": f"{self.reference.rsplit(':', 1)[1]}@{digest}",
                "image": f"{self.reference}@{digest}"}[self.form]

    def unpinned(self, values: Mapping[str, Any]) -> list[str]:
        """The paths of `values` that do not pin this image by digest."""
        return [path for path in self.values
                if not (isinstance(found := value_at(values, path), str) and _PINNED[self.form].search(found))]


def _keys(path: str) -> list[str | int]:
    """`a.b[0].c` -> ["a", "b", 0, "c"]."""
    keys: list[str | int] = []
    for part in path.split("."):
        name, *indexes = part.split("[")
        keys += [name, *(int(index.rstrip("]")) for index in indexes)]
    return keys


def value_at(values: Any, path: str) -> Any:
    """The chart value at a dotted `path` (`grafana.image.sha`, `initContainers[0].image`), None
    when any part is missing."""
    found = values
    for key in _keys(path):
        if isinstance(key, int):
            found = found[key] if isinstance(found, list) and key < len(found) else None
        else:
            found = found.get(key) if isinstance(found, Mapping) else None
    return found


def with_value(values: Any, path: str | list[str | int], value: Any) -> Any:
    """A copy of `values` with `value` at `path` (mappings made on the way; a list index must exist)."""
    head, *rest = _keys(path) if isinstance(path, str) else path
    if isinstance(head, int):
        if not (isinstance(values, list) and head < len(values)):
            raise KeyError(f"no item [{head}] to set a digest in")
        copy = list(values)
    else:
        copy = dict(values) if isinstance(values, Mapping) else {}
    copy[head] = with_value(copy[head] if isinstance(head, int) or head in copy else {}, rest, value) if rest else value
    return copy


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
    #: The images the chart deploys with Burrow's values (none for a chart of CRDs only, and for
    #: the broker's, whose image is configured: `rabbitmq.image`).
    images: tuple[ChartImage, ...] = ()

    def image(self, name: str) -> ChartImage:
        return next(image for image in self.images if image.name == name)

    def pinned_values(self, values: Mapping[str, Any], digests: Mapping[str, str]) -> dict[str, Any]:
        """`values` with each image named in `digests` (`ChartImage.name` -> `sha256:…`) pinned at its paths."""
        unknown = sorted(set(digests) - {image.name for image in self.images})
        if unknown:
            raise KeyError(f"chart {self.chart} deploys no image named {', '.join(unknown)} (its images: "
                           f"{', '.join(image.name for image in self.images) or 'none'})")
        pinned = dict(values)
        for image in self.images:
            if image.name in digests:
                for path in image.values:
                    pinned = with_value(pinned, path, image.value(digests[image.name]))
        return pinned


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
    images=(
        ChartImage("prometheus-operator", "quay.io/prometheus-operator/prometheus-operator:v0.93.1", ("prometheusOperator.image.sha",), "sha"),
        ChartImage("config-reloader", "quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1", ("prometheusOperator.prometheusConfigReloader.image.sha",), "sha"),
        ChartImage("admission-webhook-patch", "ghcr.io/jkroepke/kube-webhook-certgen:1.8.7", ("prometheusOperator.admissionWebhooks.patch.image.sha",), "sha"),
        ChartImage("prometheus", "quay.io/prometheus/prometheus:v3.14.0-distroless", ("prometheus.prometheusSpec.image.sha",), "sha"),
        ChartImage("alertmanager", "quay.io/prometheus/alertmanager:v0.34.0", ("alertmanager.alertmanagerSpec.image.sha",), "sha"),
        ChartImage("grafana", "docker.io/grafana/grafana:13.2.0", ("grafana.image.sha",), "sha"),
        ChartImage("grafana-sidecar", "quay.io/kiwigrid/k8s-sidecar:2.10.1", ("grafana.sidecar.image.sha",), "sha"),
        ChartImage("grafana-test", "docker.io/bats/bats:1.14.0", ("grafana.testFramework.image.tag",), "tag"),
        ChartImage("kube-state-metrics", "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.20.0", ("kube-state-metrics.image.sha",)),
        ChartImage("node-exporter", "quay.io/prometheus/node-exporter:v1.12.1-distroless", ("prometheus-node-exporter.image.digest",)),
    ),
)
LOKI = ChartPin(
    chart="loki",
    repository="https://grafana-community.github.io/helm-charts",
    version="18.11.0",
    source="grafana-community/helm-charts",
    tag="loki-{version}",
    why="Loki 3.7 single binary on a filesystem store, from the community chart: grafana/loki's own chart is for "
    "Grafana Enterprise Logs only from 7.0, and the open-source chart continues in grafana-community/helm-charts.",
    images=(
        ChartImage("loki", "docker.io/grafana/loki:3.7.6", ("loki.image.digest",)),
        ChartImage("canary", "docker.io/grafana/loki-canary:3.7.6", ("lokiCanary.image.digest",)),
        ChartImage("gateway", "docker.io/nginxinc/nginx-unprivileged:1.31-alpine", ("gateway.image.digest",)),
        ChartImage("gateway-exporter", "ghcr.io/jkroepke/access-log-exporter:0.4.11", ("gateway.metrics.image.digest",)),
        ChartImage("memcached", "docker.io/library/memcached:1.6.45-alpine", ("memcached.image.digest",)),
        ChartImage("memcached-exporter", "docker.io/prom/memcached-exporter:v0.17.0", ("memcachedExporter.image.digest",)),
        ChartImage("rules-sidecar", "docker.io/kiwigrid/k8s-sidecar:2.10.1", ("sidecar.image.digest",)),
    ),
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
    images=(
        ChartImage("alloy", "docker.io/grafana/alloy:v1.18.1", ("image.digest",)),
        ChartImage("config-reloader", "quay.io/prometheus-operator/prometheus-config-reloader:v0.91.0", ("configReloader.image.digest",)),
    ),
)
KEDA = ChartPin(
    chart="keda",
    repository="https://kedacore.github.io/charts",
    version="2.20.2",
    source="kedacore/charts",
    tag="v{version}",
    why="KEDA 2.20, the ScaledObject CRDs the consumer's autoscaling uses; supports Kubernetes 1.35.",
    crds="Templated: upgraded with the chart.",
    images=(
        ChartImage("operator", "ghcr.io/kedacore/keda:2.20.2", ("image.keda.tag",), "tag"),
        ChartImage("metrics-apiserver", "ghcr.io/kedacore/keda-metrics-apiserver:2.20.2", ("image.metricsApiServer.tag",), "tag"),
        ChartImage("admission-webhooks", "ghcr.io/kedacore/keda-admission-webhooks:2.20.2", ("image.webhooks.tag",), "tag"),
    ),
)
METRICS_SERVER = ChartPin(
    chart="metrics-server",
    repository="https://kubernetes-sigs.github.io/metrics-server/",
    version="3.13.1",
    source="kubernetes-sigs/metrics-server",
    tag="metrics-server-helm-chart-{version}",
    why="metrics-server 0.8.1, the resource metrics API the HPAs read.",
    images=(
        ChartImage("metrics-server", "registry.k8s.io/metrics-server/metrics-server:v0.8.1", ("image.tag",), "tag"),
    ),
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
    images=(
        ChartImage("external-secrets", "ghcr.io/external-secrets/external-secrets:v2.8.0", ("image.tag", "webhook.image.tag", "certController.image.tag",), "tag"),
    ),
)
VELERO = ChartPin(
    chart="velero",
    repository="https://vmware-tanzu.github.io/helm-charts",
    version="11.4.0",
    source="vmware-tanzu/helm-charts",
    tag="velero-{version}",
    why="Velero 1.17.1 with the AWS plugin v1.13 (its line for 1.17), one minor behind on purpose: 12.x runs Velero "
    "1.18, whose plugin line v1.14 has only a release candidate (v1.14.0-rc.1) in velero-plugin-for-aws.",
    crds="In crds/: Helm installs them with the chart's first install. Burrow turns the chart's CRD upgrade hook "
    "(upgradeCRDs) off: its Job runs docker.io/bitnamilegacy/kubectl tagged with the cluster's minor version, a frozen "
    "repository with no tag for Kubernetes 1.34 or later, so the hook (pre-install too) could never start. "
    + CRDS_FOLDER,
    images=(
        ChartImage("velero", "docker.io/velero/velero:v1.17.1", ("image.digest",)),
        # The AWS plugin is Burrow's choice: the init container its values add (burrow.addons.velero).
        ChartImage("plugin-for-aws", "docker.io/velero/velero-plugin-for-aws:v1.13.2", ("initContainers[0].image",), "image"),
    ),
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
    images=(
        ChartImage("controller", "public.ecr.aws/karpenter/controller:1.14.1", ("controller.image.digest",)),
    ),
)
FLUX = ChartPin(
    chart="flux2",
    repository="https://fluxcd-community.github.io/helm-charts",
    version="2.18.3",
    source="fluxcd-community/helm-charts",
    tag="flux2-{version}",
    why="Flux 2.8.5, for environments delivered through GitOps.",
    crds="Templated: upgraded with the chart.",
    images=(
        ChartImage("helm-controller", "ghcr.io/fluxcd/helm-controller:v1.5.3", ("helmController.tag",), "tag"),
        ChartImage("kustomize-controller", "ghcr.io/fluxcd/kustomize-controller:v1.8.3", ("kustomizeController.tag",), "tag"),
        ChartImage("notification-controller", "ghcr.io/fluxcd/notification-controller:v1.8.3", ("notificationController.tag",), "tag"),
        ChartImage("source-controller", "ghcr.io/fluxcd/source-controller:v1.8.2", ("sourceController.tag",), "tag"),
        ChartImage("flux-cli", "ghcr.io/fluxcd/flux-cli:v2.8.5", ("cli.tag",), "tag"),
    ),
)
AWS_LOAD_BALANCER_CONTROLLER = ChartPin(
    chart="aws-load-balancer-controller",
    repository="https://aws.github.io/eks-charts",
    version="3.5.0",
    source="kubernetes-sigs/aws-load-balancer-controller",
    tag="v{version}",
    why="AWS Load Balancer Controller v3.5.0 (the chart is versioned with the controller).",
    crds="In crds/ (TargetGroupBinding, IngressClassParams, Gateway API). " + CRDS_FOLDER,
    images=(
        ChartImage("controller", "public.ecr.aws/eks/aws-load-balancer-controller:v3.5.0", ("image.tag",), "tag"),
    ),
)
EXTERNAL_DNS = ChartPin(
    chart="external-dns",
    repository="https://kubernetes-sigs.github.io/external-dns/",
    version="1.21.1",
    source="kubernetes-sigs/external-dns",
    tag="external-dns-helm-chart-{version}",
    why="external-dns 0.21.0, the regions' names in the environment's zone.",
    crds="In crds/ (DNSEndpoint). " + CRDS_FOLDER,
    images=(
        ChartImage("external-dns", "registry.k8s.io/external-dns/external-dns:v0.21.0", ("image.tag",), "tag"),
    ),
)
CERT_MANAGER = ChartPin(
    chart="cert-manager",
    repository="https://charts.jetstack.io",
    version="v1.21.1",
    source="cert-manager/cert-manager",
    tag="{version}",
    why="cert-manager 1.21, the newest release (1.20 is the other supported minor): issues the brokers' federation "
    "certificates from the environment's CA (federated environments only). The chart version carries the `v`.",
    crds="Templated (crds.enabled, kept on uninstall by crds.keep): upgraded with the chart.",
    images=(
        ChartImage("controller", "quay.io/jetstack/cert-manager-controller:v1.21.1", ("image.digest",)),
        ChartImage("webhook", "quay.io/jetstack/cert-manager-webhook:v1.21.1", ("webhook.image.digest",)),
        ChartImage("cainjector", "quay.io/jetstack/cert-manager-cainjector:v1.21.1", ("cainjector.image.digest",)),
        ChartImage("startupapicheck", "quay.io/jetstack/cert-manager-startupapicheck:v1.21.1",
                   ("startupapicheck.image.digest",)),
    ),
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
        CERT_MANAGER,
        RABBITMQ,
    )
}


def pin_of(chart: str) -> ChartPin | None:
    """The pin that installs `chart` (itself or as a companion), if any."""
    return PINS.get(chart) or next((pin for pin in PINS.values() if chart in pin.companions), None)
