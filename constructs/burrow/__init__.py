"""Burrow: CDK for Terraform constructs for a message-driven service stack on Kubernetes.

Layers (L3 stacks): `CommonLayer`, `ClusterLayer` (AWS), `AddOnsLayer`, `AppLayer`, and
`GlobalLayer` (AWS: DNS shared by an environment's regions).
Intent constructs (L2): `AppNamespace`, `RabbitMqBroker`, `QueueWorker`, `KubernetesObjects`.
Cluster providers: `KubeconfigCluster` (an existing cluster), `EksCluster` (AWS).

Every name loads its module on first use: `import burrow` imports no provider binding.
"""

from __future__ import annotations

import importlib
from typing import Any

# Every public name and the module that defines it. Modules load on first use, so
# `import burrow` is cheap and a stack that does not touch AWS never loads its bindings.
_EXPORTS = {
    "ClusterAddOn": "burrow.addons.base",
    "HelmAddOn": "burrow.addons.base",
    "AppNamespace": "burrow.app.namespace",
    "AppNamespaceProps": "burrow.app.namespace",
    "RabbitMqBroker": "burrow.app.rabbitmq",
    "RabbitMqBrokerProps": "burrow.app.rabbitmq",
    "QueueWorker": "burrow.app.worker",
    "QueueWorkerProps": "burrow.app.worker",
    "QueueBinding": "burrow.app.worker",
    "PublicIngress": "burrow.app.ingress",
    "PublicIngressProps": "burrow.app.ingress",
    "BrokerFederation": "burrow.app.federation",
    "FederationUpstream": "burrow.app.federation",
    "EnvironmentConfig": "burrow.config.schema",
    "Image": "burrow.config.schema",
    "Resources": "burrow.config.schema",
    "Tier": "burrow.config.schema",
    "ResourceAmounts": "burrow.config.schema",
    "NamespaceQuota": "burrow.config.schema",
    "PersistenceConfig": "burrow.config.schema",
    "MessagingConfig": "burrow.config.schema",
    "CpuAutoscalingConfig": "burrow.config.schema",
    "QueueAutoscalingConfig": "burrow.config.schema",
    "AlertThresholds": "burrow.config.schema",
    "NetworkConfig": "burrow.config.schema",
    "EksClusterConfig": "burrow.config.schema",
    "ApiAccessConfig": "burrow.config.schema",
    "NodeGroupConfig": "burrow.config.schema",
    "KarpenterConfig": "burrow.config.schema",
    "NodePoolLimits": "burrow.config.schema",
    "load_environment": "burrow.config.loader",
    "load_environments": "burrow.config.loader",
    "EnvironmentStacks": "burrow.environment",
    "build_environment": "burrow.environment",
    "BurrowError": "burrow.errors",
    "ConfigError": "burrow.errors",
    "PropsError": "burrow.errors",
    "KubernetesObjects": "burrow.k8s.release",
    "KubernetesObjectsProps": "burrow.k8s.release",
    "Guardrails": "burrow.policy.guardrails",
    "Waiver": "burrow.policy.guardrails",
    "Rule": "burrow.policy.guardrails",
    "Finding": "burrow.policy.guardrails",
    "Wording": "burrow.policy.guardrails",
    "Policed": "burrow.policy.facts",
    "PolicyFacts": "burrow.policy.facts",
    "ClusterInfo": "burrow.spi",
    "KubeconfigCluster": "burrow.spi",
    "TokenCluster": "burrow.spi",
    "EdgeAccess": "burrow.spi",
    "SecretsAccess": "burrow.spi",
    "NodeAutoscalingAccess": "burrow.spi",
    "BackupAccess": "burrow.spi",
    "AddOnsLayer": "burrow.stacks.addons",
    "synthesize": "burrow.synthesis",
    "AppLayer": "burrow.stacks.app",
    "BurrowStack": "burrow.stacks.base",
    "CommonLayer": "burrow.stacks.aws",
    "ClusterLayer": "burrow.stacks.aws",
    "GlobalLayer": "burrow.stacks.global_",
    "PublicEntry": "burrow.cluster.edge",
    "PublicEntryProps": "burrow.cluster.edge",
    "RegionPeering": "burrow.common.peering",
    "RegionPeeringProps": "burrow.common.peering",
    "EksCluster": "burrow.cluster.eks",
    "Network": "burrow.common.network",
    "StateStorage": "burrow.common.state",
    "StateStorageProps": "burrow.common.state",
    "StateAccess": "burrow.common.state",
    "BackupStorage": "burrow.common.backups",
    "BackupStorageProps": "burrow.common.backups",
    "ContainerRegistry": "burrow.common.registry",
    "ContainerRegistryProps": "burrow.common.registry",
    "DeliveryRoles": "burrow.common.delivery",
    "DeliveryRolesProps": "burrow.common.delivery",
}

__all__ = [*_EXPORTS]  # noqa: PLE0604

# A user's mistake that nobody catches (a bad prop while building a stack) ends a script with
# Burrow's one line, not a traceback through jsii; every other error is shown as Python shows it.
importlib.import_module("burrow.errors").install_excepthook()


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'burrow' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
