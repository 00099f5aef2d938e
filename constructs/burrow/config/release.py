"""A release: the image digests built once on main and promoted unchanged through the environments.

`release.json` = {"images": {"producer": {"registry", "repository", "digest"}, "consumer": {…}},
"third_party": {"docker.io/bitnamilegacy/rabbitmq:4.1.3-debian-12-r1": "sha256:…", …}}.
`images` are Burrow's own services, pushed by CI; `third_party` maps each other image an
environment deploys by tag (the broker's, which its sidecar shares, and every image of every add-on
chart the environment installs, as `burrow.pins` lists them) to the digest that tag named when the
release was made (`make release` resolves them where the registries are reachable).
`make deploy ENV=… RELEASE=release.json` synthesizes with all of them pinned by digest
(`BURROW_RELEASE`); a production environment that does not waive `image-digest` refuses to
synthesize without one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from burrow.config.schema import EnvironmentConfig, Tier
from burrow.errors import ConfigError
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
    ChartPin,
)

SERVICES = ("producer", "consumer")
RELEASE_VARIABLE = "BURROW_RELEASE"


class ReleasedImage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    registry: str = Field(min_length=1)
    repository: str = Field(min_length=1)
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")


Digest = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]


class Release(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    images: dict[str, ReleasedImage]
    #: `registry/repository:tag` -> the digest it named at release time.
    third_party: dict[str, Digest] = Field(default_factory=dict)


def addon_charts(env: EnvironmentConfig) -> list[ChartPin]:
    """The pins of the add-on charts `env`'s add-ons stacks install (as `burrow.stacks.addons`
    chooses them: External Secrets, Karpenter, the edge and Velero on EKS only; cert-manager where
    the regions federate)."""
    wanted = [
        (EXTERNAL_SECRETS, env.on_aws),
        (CERT_MANAGER, env.on_aws and bool(env.federated_regions)),
        (METRICS_SERVER, env.addons.metrics_server.enabled),
        (KEDA, env.addons.keda.enabled),
        (KUBE_PROMETHEUS_STACK, env.monitoring.enabled),
        (LOKI, env.monitoring.enabled and env.monitoring.loki.enabled),
        (ALLOY, env.monitoring.enabled and env.monitoring.loki.enabled),
        (KARPENTER, env.karpenter is not None),
        (AWS_LOAD_BALANCER_CONTROLLER, env.on_aws and env.ingress.enabled),
        (EXTERNAL_DNS, env.on_aws and env.ingress.enabled),
        (VELERO, env.on_aws and env.backups.enabled),
        (FLUX, env.delivery == "gitops" and env.gitops is not None),
    ]
    return [pin for pin, installed in wanted if installed]


def addon_images(env: EnvironmentConfig) -> dict[str, dict[str, str]]:
    """chart -> image name -> reference, for every image of the add-on charts `env` installs that
    its configuration does not pin yet (`addons.image_digests`)."""
    pinned = env.addons.image_digests
    return {pin.chart: {image.name: image.reference for image in pin.images
                        if image.name not in pinned.get(pin.chart, {})}
            for pin in addon_charts(env) if pin.images}


def third_party_images(env: EnvironmentConfig) -> list[str]:
    """The images `env` deploys by tag that Burrow does not build: what a release must pin (the
    broker's, and every add-on chart's)."""
    image = env.rabbitmq.image
    broker = [] if image.digest else [f"{image.registry}/{image.repository}:{image.tag}"]
    return list(dict.fromkeys([*broker, *(ref for images in addon_images(env).values() for ref in images.values())]))


def needs_release(env: EnvironmentConfig) -> bool:
    """Production pins every image by digest unless it waives `image-digest`."""
    return env.tier == Tier.PRODUCTION and not any(w.rule == "image-digest" for w in env.guardrails.waivers)


def missing_release(configs: list[EnvironmentConfig]) -> str | None:
    """The sentence refusing a synth of `configs` without a release file, or None when none needs one."""
    needing = [env.name for env in configs if needs_release(env)]
    if not needing:
        return None
    return (f"{', '.join(needing)}: production pins every image by digest, and no release file was given: set "
            f"{RELEASE_VARIABLE}=<release.json> (make deploy ENV=… RELEASE=…), the file `make release` writes "
            "with the services' digests and a `third_party` digest for each other image")


def load_release(path: Path) -> Release:
    try:
        return Release.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: release file not found") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: not a valid release: {exc}") from None


def apply_release(env: EnvironmentConfig, release: Release) -> EnvironmentConfig:
    """`env` with each released service's image replaced by the released digest, and each
    third-party image (the broker's, the add-on charts') pinned to the digest the release recorded
    for its tag. A production
    environment that needs a release refuses one that lacks a third-party digest."""
    used_by = {ref: f" ({chart}'s {name})" for chart, images in addon_images(env).items() for name, ref in images.items()}
    missing = [f"{ref}{used_by.get(ref, '')}" for ref in third_party_images(env) if ref not in release.third_party]
    if missing and needs_release(env):
        raise ConfigError(f"{env.name}: the release file has no third_party digest for {', '.join(missing)}: "
                          "make release resolves one for every image the environments deploy by tag")
    image = env.rabbitmq.image
    pinned = release.third_party.get(f"{image.registry}/{image.repository}:{image.tag}")
    if pinned and not image.digest:
        env = env.model_copy(update={"rabbitmq": env.rabbitmq.model_copy(
            update={"image": image.model_copy(update={"digest": pinned})})})
    digests = {chart: dict(found) for chart, found in env.addons.image_digests.items()}
    for chart, images in addon_images(env).items():
        for name, ref in images.items():
            if ref in release.third_party:
                digests.setdefault(chart, {})[name] = release.third_party[ref]
    env = env.model_copy(update={"addons": env.addons.model_copy(update={"image_digests": digests})})
    apps = env.apps
    for name in SERVICES:
        released = release.images.get(name)
        if released is None:
            continue
        worker = getattr(apps, name)
        image = worker.image.model_copy(update=released.model_dump())
        apps = apps.model_copy(update={name: worker.model_copy(update={"image": image})})
    return env.model_copy(update={"apps": apps})
