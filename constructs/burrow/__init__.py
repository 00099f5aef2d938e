"""Burrow: CDK for Terraform constructs for a message-driven service stack on Kubernetes.

Intent constructs (L2): `AppNamespace`, `RabbitMqBroker`, `QueueWorker`, `Team`, `KubernetesObjects`.
Cluster providers: `KubeconfigCluster` (an existing cluster), `EksCluster` (AWS).
Their props and settings (`Image`, `Resources`, `MessagingConfig`, ...), policy (`Guardrails`, `Tier`).

This is the library: nothing exported here knows Burrow's environment files. The application that
maps them to props lives beside it and is imported from its own modules: the schema and loader
(`burrow.config`: `EnvironmentConfig`, `load_environment`), the build of an environment
(`burrow.environment`) and the stacks bound to one (`burrow.stacks.*`: `CommonLayer`, `AppLayer`, ...).

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
    "BrokerTenant": "burrow.app.rabbitmq",
    "BrokerTenantProps": "burrow.app.rabbitmq",
    "Team": "burrow.app.team",
    "TeamProps": "burrow.app.team",
    "TenantLimits": "burrow.app.team",
    "QueueWorker": "burrow.app.worker",
    "QueueWorkerProps": "burrow.app.worker",
    "QueueBinding": "burrow.app.worker",
    "PublicIngress": "burrow.app.ingress",
    "PublicIngressProps": "burrow.app.ingress",
    "BrokerFederation": "burrow.app.federation",
    "FederationUpstream": "burrow.app.federation",
    "Image": "burrow.settings",
    "Resources": "burrow.settings",
    "Tier": "burrow.settings",
    "ResourceAmounts": "burrow.settings",
    "NamespaceQuota": "burrow.app.settings",
    "PersistenceConfig": "burrow.app.settings",
    "MessagingConfig": "burrow.app.settings",
    "CpuAutoscalingConfig": "burrow.app.settings",
    "QueueAutoscalingConfig": "burrow.app.settings",
    "AlertThresholds": "burrow.monitoring.settings",
    "NetworkConfig": "burrow.common.settings",
    "EksClusterConfig": "burrow.cluster.settings",
    "ApiAccessConfig": "burrow.cluster.settings",
    "NodeGroupConfig": "burrow.cluster.settings",
    "KarpenterConfig": "burrow.addons.settings",
    "NodePoolLimits": "burrow.addons.settings",
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
    "synthesize": "burrow.synthesis",
    "PublicEntry": "burrow.cluster.edge",
    "PublicEntryProps": "burrow.cluster.edge",
    "RegionPeering": "burrow.common.peering",
    "RegionPeeringProps": "burrow.common.peering",
    "EksCluster": "burrow.cluster.eks",
    "EksClusterProps": "burrow.cluster.eks",
    "Network": "burrow.common.network",
    "NetworkProps": "burrow.common.network",
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
