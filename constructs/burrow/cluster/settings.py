"""Settings of `EksCluster`: its node groups, who administers it, and where its API is reached from.
Pydantic only (the environment schema builds its `cluster` section from them before cdktf loads)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from burrow.addons.settings import KarpenterConfig
from burrow.settings import DnsLabel, Model, distinct, ipv4_networks


class NodeGroupConfig(Model):
    """An EKS managed node group. Every field is explicit so a re-plan after apply is empty."""

    instance_types: list[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*\.[0-9a-z]+$")]] = Field(
        min_length=1
    )
    ami_type: Literal["AL2023_x86_64_STANDARD", "AL2023_ARM_64_STANDARD", "BOTTLEROCKET_x86_64"] = (
        "AL2023_x86_64_STANDARD"
    )
    capacity_type: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    disk_size_gib: int = Field(default=50, ge=20, le=2000)
    min_size: int = Field(ge=0)
    max_size: int = Field(ge=1)
    desired_size: int = Field(ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> NodeGroupConfig:
        if self.min_size > self.max_size:
            raise ValueError(f"min_size ({self.min_size}) exceeds max_size ({self.max_size})")
        if not self.min_size <= self.desired_size <= self.max_size:
            raise ValueError(
                f"desired_size ({self.desired_size}) must lie between min_size ({self.min_size}) "
                f"and max_size ({self.max_size})"
            )
        return self


PrincipalArn = Annotated[
    str, StringConstraints(pattern=r"^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:(role|user)/[A-Za-z0-9+=,.@_/-]{1,512}$")
]


class EksClusterSettings(Model):
    """What `EksCluster` builds from the environment's `cluster.eks` section: its control plane's logs
    and its managed node groups. `EksClusterProps` inherits these fields (and their defaults);
    `EksClusterConfig`, the section itself, adds what the application turns into other props."""

    #: The control plane's logs sent to CloudWatch Logs. default: all five
    log_types: list[Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]] = Field(
        default_factory=lambda: ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    )
    #: The managed node groups by name (at least one): the system pods' nodes, and the workloads'
    #: unless Karpenter provisions those.
    node_groups: dict[DnsLabel, NodeGroupConfig] = Field(min_length=1)


class EksClusterConfig(EksClusterSettings):
    """An EKS cluster created by Burrow's cluster layer (who may reach its API: `cluster.api_access`)."""

    #: Node autoscaling for the workloads (the node groups above stay as the core for system pods).
    karpenter: KarpenterConfig = KarpenterConfig()
    #: IAM roles or users (ARNs in the environment's account) that administer the cluster through EKS
    #: access entries: the deploy role CI assumes, operators' roles. Empty: whoever creates the cluster
    #: is its one admin. Listed: exactly these (and aws.role_arn), nobody implicitly.
    admin_principals: list[PrincipalArn] = []

    @field_validator("admin_principals")
    @classmethod
    def _distinct_admins(cls, values: list[str]) -> list[str]:
        return distinct(values, "principal")


#: The most networks EKS accepts in a cluster's `publicAccessCidrs`.
MAX_PUBLIC_ACCESS_CIDRS = 40


class ApiAccessConfig(Model):
    """Where deploys reach the EKS cluster's API from (the kubernetes and helm providers of the add-ons
    and app stacks, `make smoke`). The private endpoint is always on (nodes and pods use it).

    `internet`: the public endpoint is on, for `public_cidrs` only (deploys from a laptop, from
    GitHub-hosted runners); every request still needs an IAM identity with an EKS access entry.
    `vpc`: the public endpoint is off; deploys run on runners inside the VPC (or a network routed
    to it). default: vpc (nothing public)"""

    deploy_from: Literal["internet", "vpc"] = "vpc"
    #: Networks allowed to reach the public endpoint (`deploy_from: internet`; at most 40).
    public_cidrs: list[str] = Field(default_factory=list, max_length=MAX_PUBLIC_ACCESS_CIDRS)

    @field_validator("public_cidrs")
    @classmethod
    def _cidrs(cls, values: list[str]) -> list[str]:
        return ipv4_networks(values)

    @model_validator(mode="after")
    def _reachable(self) -> ApiAccessConfig:
        if self.deploy_from == "internet" and not self.public_cidrs:
            raise ValueError(
                "deploy_from: internet needs public_cidrs (the networks deploys come from, e.g. your "
                "runners' or office's egress addresses); an empty list would let nobody in"
            )
        if self.deploy_from == "vpc" and self.public_cidrs:
            raise ValueError(
                f"public_cidrs {self.public_cidrs} are only used with deploy_from: internet (with vpc "
                "the public endpoint is off); remove them or set deploy_from: internet"
            )
        return self

    @property
    def public(self) -> bool:
        """True when the cluster's public endpoint is on."""
        return self.deploy_from == "internet"
