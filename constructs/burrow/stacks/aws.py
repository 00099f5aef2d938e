"""The AWS layers: `CommonLayer` (`<env>-common`) and `ClusterLayer` (`<env>-cluster`).

Only environments whose cluster is EKS import this module (the AWS bindings take
10-15 s to load).
"""

from __future__ import annotations

import os

from cdktf import LocalBackend, TerraformOutput
from cdktf_cdktf_provider_aws.provider import AwsProvider, AwsProviderDefaultTags

from burrow.cluster.eks import EksCluster
from burrow.common.network import Network
from burrow.common.registry import ContainerRegistry
from burrow.common.state import StateStorage
from burrow.config.schema import EnvironmentConfig
from burrow.spi import ClusterInfo
from burrow.stacks.base import BurrowStack
from constructs import Construct

IMAGES = ("producer", "consumer")
BOOTSTRAP_VARIABLE = "BURROW_BOOTSTRAP"


def cluster_name(env: EnvironmentConfig) -> str:
    return f"burrow-{env.name}"


class AwsStack(BurrowStack):
    """A Burrow stack with the AWS provider, every resource tagged with project and environment."""

    def __init__(self, scope: Construct, env: EnvironmentConfig, layer: str) -> None:
        super().__init__(scope, env, layer)
        self.aws = AwsProvider(
            self,
            "aws",
            region=env.aws.region,
            default_tags=[
                AwsProviderDefaultTags(tags={"Project": "burrow", "Environment": env.name, "ManagedBy": "burrow"})
            ],
        )


class CommonLayer(AwsStack):
    """`<env>-common`: state storage, container registries and network.

    Bootstrap: this stack creates the bucket that holds every stack's state, including its
    own. The first deploy runs with `BURROW_BOOTSTRAP=1` (local state); a second
    `cdktf deploy` without it moves the state into the bucket (see README).
    """

    def __init__(self, scope: Construct, env: EnvironmentConfig) -> None:
        super().__init__(scope, env, "common")
        if os.environ.get(BOOTSTRAP_VARIABLE) == "1":
            LocalBackend(self, path=f"terraform.{env.name}-common.tfstate")
        self.state = StateStorage(self, "state", bucket_name=env.state.bucket)
        self.registries = {
            image: ContainerRegistry(self, f"registry-{image}", name=f"burrow/{image}", keep_images=env.registry.keep_images)
            for image in IMAGES
        }
        self.network = Network(
            self, "network", name=f"burrow-{env.name}", config=env.network, cluster_name=cluster_name(env)
        )
        for image, registry in self.registries.items():
            TerraformOutput(self, f"{image}-repository-url", value=registry.url)


class ClusterLayer(AwsStack):
    """`<env>-cluster`: the EKS cluster in the common layer's private subnets."""

    def __init__(self, scope: Construct, env: EnvironmentConfig, *, network: Network) -> None:
        super().__init__(scope, env, "cluster")
        assert env.cluster.eks is not None  # guaranteed by the schema for provider 'eks'
        self.eks = EksCluster(
            self,
            "eks",
            name=cluster_name(env),
            kubernetes_version=env.kubernetes.version,
            region=env.aws.region,
            config=env.cluster.eks,
            subnet_ids=network.private_subnet_ids,
        )
        TerraformOutput(self, "cluster-name", value=self.eks.cluster.name)
        TerraformOutput(self, "cluster-endpoint", value=self.eks.cluster.endpoint)

    @property
    def cluster_info(self) -> ClusterInfo:
        return self.eks.info
