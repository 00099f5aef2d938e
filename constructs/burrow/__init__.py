"""Burrow: CDK for Terraform constructs for a message-driven service stack on Kubernetes.

Layers (L3 stacks): `CommonLayer`, `ClusterLayer` (AWS), `AddOnsLayer`, `AppLayer`.
Intent constructs (L2): `AppNamespace`, `RabbitMqBroker`, `QueueWorker`, `KubernetesObjects`.
Cluster providers: `KubeconfigCluster` (an existing cluster), `EksCluster` (AWS).

Names that need the AWS provider bindings (slow to import) load on first use, so a
stack that does not touch AWS never imports them.
"""

from __future__ import annotations

import importlib
from typing import Any

from burrow.addons.base import ClusterAddOn, HelmAddOn
from burrow.app.namespace import AppNamespace
from burrow.app.rabbitmq import RabbitMqBroker, RabbitMqBrokerProps
from burrow.app.worker import QueueWorker, QueueWorkerProps
from burrow.config import EnvironmentConfig, Image, Resources, Tier, load_environment, load_environments
from burrow.environment import EnvironmentStacks, build_environment
from burrow.errors import BurrowError, ConfigError, PropsError
from burrow.k8s.release import KubernetesObjects
from burrow.spi import ClusterInfo, KubeconfigCluster, TokenCluster
from burrow.stacks.addons import AddOnsLayer
from burrow.stacks.app import AppLayer
from burrow.stacks.base import BurrowStack

_AWS_NAMES = {
    "CommonLayer": "burrow.stacks.aws",
    "ClusterLayer": "burrow.stacks.aws",
    "EksCluster": "burrow.cluster.eks",
    "Network": "burrow.common.network",
    "StateStorage": "burrow.common.state",
    "ContainerRegistry": "burrow.common.registry",
}


def __getattr__(name: str) -> Any:
    module = _AWS_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'burrow' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "AddOnsLayer",
    "AppLayer",
    "AppNamespace",
    "BurrowError",
    "BurrowStack",
    "ClusterAddOn",
    "ClusterInfo",
    "ConfigError",
    "EnvironmentConfig",
    "EnvironmentStacks",
    "HelmAddOn",
    "Image",
    "KubeconfigCluster",
    "KubernetesObjects",
    "PropsError",
    "QueueWorker",
    "QueueWorkerProps",
    "RabbitMqBroker",
    "RabbitMqBrokerProps",
    "Resources",
    "Tier",
    "TokenCluster",
    "build_environment",
    "load_environment",
    "load_environments",
    "CommonLayer",
    "ClusterLayer",
    "EksCluster",
    "Network",
    "StateStorage",
    "ContainerRegistry",
]
