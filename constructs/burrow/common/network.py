"""`Network`: a VPC across availability zones with public and private subnets and NAT."""

from __future__ import annotations

from dataclasses import dataclass

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

from burrow.common.settings import NetworkConfig
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


class Network(Construct):
    """The environment's VPC. `nat: per_az` gives each zone its own NAT gateway (no cross-zone
    single point of failure); `single` shares one.

    Escape hatches: `vpc`, `public_subnets`, `private_subnets`, `nat_gateways`.
    """

    def __init__(
        self, scope: Construct, id: str, *, name: str, config: NetworkConfig, cluster_name: str, region: str,
        node_discovery: bool = False,
    ) -> None:
        super().__init__(scope, id)
        # Pin the zones by name, so the set never grows by itself when AWS adds a zone.
        zone_names = [f"{region}{chr(ord('a') + i)}" for i in range(config.availability_zones)]
        zones = DataAwsAvailabilityZones(
            self,
            "zones",
            state="available",
            filter=[DataAwsAvailabilityZonesFilter(name="zone-name", values=zone_names)],
        )
        self.vpc = Vpc(
            self,
            "vpc",
            cidr_block=config.vpc_cidr,
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
        for plan in plan_subnets(config):
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
            if config.nat == "per_az" or not self.nat_gateways:
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
                    **({"karpenter.sh/discovery": cluster_name} if node_discovery else {}),
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
