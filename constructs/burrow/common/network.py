"""`Network`: a VPC across availability zones with public and private subnets and NAT."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cdktf import Fn
from cdktf_cdktf_provider_aws.data_aws_availability_zones import (
    DataAwsAvailabilityZones,
    DataAwsAvailabilityZonesFilter,
)
from cdktf_cdktf_provider_aws.default_security_group import DefaultSecurityGroup
from cdktf_cdktf_provider_aws.eip import Eip
from cdktf_cdktf_provider_aws.internet_gateway import InternetGateway
from cdktf_cdktf_provider_aws.nat_gateway import NatGateway
from cdktf_cdktf_provider_aws.route import Route
from cdktf_cdktf_provider_aws.route_table import RouteTable
from cdktf_cdktf_provider_aws.route_table_association import RouteTableAssociation
from cdktf_cdktf_provider_aws.subnet import Subnet
from cdktf_cdktf_provider_aws.vpc import Vpc
from pydantic import Field

from burrow.common.settings import NetworkConfig
from burrow.names import EksClusterName, RegionName
from burrow.props import Props, child_path, props_for
from constructs import Construct

ANYWHERE = "0.0.0.0/0"


@dataclass(frozen=True)
class SubnetPlan:
    zone_index: int
    public: str
    private: str


def plan_subnets(config: NetworkConfig) -> list[SubnetPlan]:
    """Carve one public and one private subnet per zone out of the VPC, without overlap.

    Public subnets take the first blocks, private ones the blocks after them; the schema
    already checked that they fit.
    """
    return [SubnetPlan(i, public, private)
            for i, (public, private) in enumerate(zip(config.public_subnet_cidrs, config.private_subnet_cidrs, strict=True))]


class NetworkProps(NetworkConfig, Props):
    """Props of `Network`: the environment's `network` settings (`vpc_cidr`, `availability_zones`,
    `subnet_prefix_length`, `nat`, inherited from `NetworkConfig` with their defaults) plus what the
    VPC is named after and where it is. Required: `name`, `cluster_name`, `region`."""

    #: The `Name` tag of the VPC, its gateways, route tables and subnets (`<name>-private-0`, ...).
    name: str = Field(min_length=1, max_length=200)
    #: The EKS cluster that uses the subnets: they carry `kubernetes.io/cluster/<cluster_name>`, so its
    #: load balancer controller finds them.
    cluster_name: EksClusterName
    #: The region; the VPC spans its first `availability_zones` zones (`<region>a`, `<region>b`, ...).
    region: RegionName
    #: Tag the private subnets `karpenter.sh/discovery: <cluster_name>`, so Karpenter launches its
    #: nodes into them. default: false
    node_discovery: bool = False


class Network(Construct):
    """The environment's VPC. `nat: per_az` gives each zone its own NAT gateway (no cross-zone
    single point of failure); `single` shares one.

    `props` is a `NetworkProps` or a mapping of its fields. Escape hatches: `vpc`, `public_subnets`,
    `private_subnets`, `nat_gateways`.
    """

    def __init__(self, scope: Construct, id: str, props: NetworkProps | Mapping[str, Any]) -> None:
        """`props`: a `NetworkProps` or a mapping of its fields (validated here, so a mistake names
        this construct's path)."""
        props = props_for(child_path(scope, id), NetworkProps, props)
        super().__init__(scope, id)
        self.props = props
        name, cluster_name, region = props.name, props.cluster_name, props.region
        # Pin the zones by name, so the set never grows by itself when AWS adds a zone.
        zone_names = [f"{region}{chr(ord('a') + i)}" for i in range(props.availability_zones)]
        zones = DataAwsAvailabilityZones(
            self,
            "zones",
            state="available",
            filter=[DataAwsAvailabilityZonesFilter(name="zone-name", values=zone_names)],
        )
        self.vpc = Vpc(
            self,
            "vpc",
            cidr_block=props.vpc_cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": name},
        )
        # The VPC's default security group allows nothing: every workload gets an explicit one.
        DefaultSecurityGroup(self, "default-sg", vpc_id=self.vpc.id, tags={"Name": f"{name}-default-deny"})
        gateway = InternetGateway(self, "igw", vpc_id=self.vpc.id, tags={"Name": name})
        public_routes = RouteTable(self, "public-routes", vpc_id=self.vpc.id, tags={"Name": f"{name}-public"})
        Route(self, "public-default", route_table_id=public_routes.id, destination_cidr_block=ANYWHERE, gateway_id=gateway.id)
        cluster_tag = {f"kubernetes.io/cluster/{cluster_name}": "shared"}
        self.public_subnets: list[Subnet] = []
        self.private_subnets: list[Subnet] = []
        self.nat_gateways: list[NatGateway] = []
        self.private_route_tables: list[RouteTable] = []
        for plan in plan_subnets(props):
            zone = Fn.element(zones.names, plan.zone_index)
            public = Subnet(
                self,
                f"public-{plan.zone_index}",
                vpc_id=self.vpc.id,
                cidr_block=plan.public,
                availability_zone=zone,
                map_public_ip_on_launch=False,
                tags={"Name": f"{name}-public-{plan.zone_index}", "kubernetes.io/role/elb": "1", **cluster_tag},
            )
            RouteTableAssociation(
                self, f"public-{plan.zone_index}-routes", subnet_id=public.id, route_table_id=public_routes.id
            )
            if props.nat == "per_az" or not self.nat_gateways:
                eip = Eip(self, f"nat-ip-{plan.zone_index}", domain="vpc", tags={"Name": f"{name}-nat-{plan.zone_index}"})
                self.nat_gateways.append(
                    NatGateway(
                        self,
                        f"nat-{plan.zone_index}",
                        allocation_id=eip.id,
                        subnet_id=public.id,
                        tags={"Name": f"{name}-nat-{plan.zone_index}"},
                        depends_on=[gateway],
                    )
                )
            private_routes = RouteTable(
                self, f"private-{plan.zone_index}-table", vpc_id=self.vpc.id, tags={"Name": f"{name}-private-{plan.zone_index}"}
            )
            Route(
                self,
                f"private-{plan.zone_index}-default",
                route_table_id=private_routes.id,
                destination_cidr_block=ANYWHERE,
                nat_gateway_id=self.nat_gateways[-1].id,
            )
            self.private_route_tables.append(private_routes)
            private = Subnet(
                self,
                f"private-{plan.zone_index}",
                vpc_id=self.vpc.id,
                cidr_block=plan.private,
                availability_zone=zone,
                tags={
                    "Name": f"{name}-private-{plan.zone_index}",
                    "kubernetes.io/role/internal-elb": "1",
                    **cluster_tag,
                    # Karpenter launches its nodes into the private subnets carrying this tag.
                    **({"karpenter.sh/discovery": cluster_name} if props.node_discovery else {}),
                },
            )
            RouteTableAssociation(
                self, f"private-{plan.zone_index}-routes", subnet_id=private.id, route_table_id=private_routes.id
            )
            self.public_subnets.append(public)
            self.private_subnets.append(private)

    @property
    def private_subnet_ids(self) -> list[str]:
        return [subnet.id for subnet in self.private_subnets]
