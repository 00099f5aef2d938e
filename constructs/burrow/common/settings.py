"""Settings of `Network`: the VPC's range, its zones and how its subnets are cut. Pydantic only (the
environment schema builds its `network` section from it before cdktf loads)."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator, model_validator

from burrow.settings import Model


class NetworkConfig(Model):
    vpc_cidr: str = "10.0.0.0/16"
    availability_zones: int = Field(default=2, ge=2, le=6)
    subnet_prefix_length: int = Field(default=20, ge=16, le=28)
    nat: Literal["single", "per_az"] = "single"

    @field_validator("vpc_cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            net = ipaddress.IPv4Network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"not an IPv4 network in CIDR notation ({exc})") from None
        if net.prefixlen > 24:
            raise ValueError("the VPC needs at least a /24")
        return value

    @model_validator(mode="after")
    def _fits(self) -> NetworkConfig:
        vpc = ipaddress.IPv4Network(self.vpc_cidr)
        needed = 2 * self.availability_zones
        available = 2 ** (self.subnet_prefix_length - vpc.prefixlen) if self.subnet_prefix_length > vpc.prefixlen else 0
        if available < needed:
            raise ValueError(
                f"{needed} subnets of /{self.subnet_prefix_length} (public and private per zone) "
                f"do not fit in {self.vpc_cidr}"
            )
        return self

    def _blocks(self) -> list[str]:
        blocks = ipaddress.IPv4Network(self.vpc_cidr).subnets(new_prefix=self.subnet_prefix_length)
        return [str(block) for _, block in zip(range(2 * self.availability_zones), blocks, strict=False)]

    @property
    def public_subnet_cidrs(self) -> list[str]:
        """One per zone, the VPC's first blocks: where internet-facing load balancers take their addresses."""
        return self._blocks()[: self.availability_zones]

    @property
    def private_subnet_cidrs(self) -> list[str]:
        """One per zone, the blocks after the public ones: nodes, pods (VPC CNI), internal load
        balancers and the EKS API's network interfaces."""
        return self._blocks()[self.availability_zones :]
