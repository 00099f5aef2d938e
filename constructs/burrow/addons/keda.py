"""KEDA: scales the consumer on RabbitMQ queue depth (installs the ScaledObject CRDs)."""

from __future__ import annotations

from burrow.addons.base import HelmAddOn


def keda() -> HelmAddOn:
    return HelmAddOn(
        name="keda",
        repository="https://kedacore.github.io/charts",
        chart="keda",
        version="2.16.1",
        namespace="keda",
    )
