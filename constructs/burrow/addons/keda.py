"""KEDA: scales the consumer on RabbitMQ queue depth (installs the ScaledObject CRDs)."""

from __future__ import annotations

from burrow.addons.base import HelmAddOn
from burrow.pins import KEDA


def keda() -> HelmAddOn:
    return HelmAddOn(
        name="keda",
        repository=KEDA.repository,
        chart="keda",
        version=KEDA.version,
        namespace="keda",
    )
