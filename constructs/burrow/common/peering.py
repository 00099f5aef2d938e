"""`RegionPeering`: one region's VPC peered with another region's of the same environment, so that
the regions' brokers reach each other privately for federation (traffic between regions over a
VPC peering stays on AWS's backbone and is encrypted by AWS).

The peering is requested from this region and accepted in the peer region (through an AWS
provider for that region), and every private route table on both sides gets a route to the other
side's VPC range. The ranges must not overlap; the props refuse that before synthesis.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from cdktf import Token
from cdktf_cdktf_provider_aws.provider import AwsProvider
from cdktf_cdktf_provider_aws.route import Route
from cdktf_cdktf_provider_aws.vpc_peering_connection import VpcPeeringConnection
from cdktf_cdktf_provider_aws.vpc_peering_connection_accepter import VpcPeeringConnectionAccepterA
from pydantic import Field, InstanceOf, model_validator

from burrow.common.network import Network
from burrow.names import Ipv4Cidr, RegionName
from burrow.props import Props, child_path, props_for
from constructs import Construct


class RegionPeeringProps(Props):
    """Props of `RegionPeering`: every field is required."""

    #: Prefix of the connection's `Name` tag (`<name>-to-<peer_region>`), usually the cluster's name.
    name: str = Field(min_length=1, max_length=200)
    #: This stack's network (the side that requests the peering).
    network: InstanceOf[Network]
    #: `network`'s VPC range: the peer's private route tables get a route to it.
    cidr: Ipv4Cidr
    #: The other region's network (usually another stack's: cdktf makes the references cross-stack).
    peer: InstanceOf[Network]
    #: `peer`'s VPC range: this network's private route tables get a route to it. It must not overlap
    #: `cidr` (AWS refuses to peer overlapping ranges).
    peer_cidr: Ipv4Cidr
    #: The peer's region.
    peer_region: RegionName
    #: An AWS provider for `peer_region`, in this stack: it accepts the peering and adds the peer's routes.
    peer_provider: InstanceOf[AwsProvider]

    @model_validator(mode="after")
    def _two_networks_apart(self) -> RegionPeeringProps:
        if self.network is self.peer:
            raise ValueError("network and peer are the same Network: a VPC is not peered with itself")
        if ipaddress.IPv4Network(self.cidr).overlaps(ipaddress.IPv4Network(self.peer_cidr)):
            raise ValueError(f"cidr {self.cidr} and peer_cidr {self.peer_cidr} overlap: AWS peers only VPCs whose "
                             "ranges are apart (give one network another vpc_cidr)")
        region = self.peer_provider.region
        if isinstance(region, str) and not Token.is_unresolved(region) and region != self.peer_region:
            raise ValueError(f"peer_provider is for region {region!r}, not peer_region {self.peer_region!r}: the "
                             "peering must be accepted in the peer's region")
        return self


class RegionPeering(Construct):
    """Peers `network` (this stack's region) with `peer` (a network of `peer_region`, usually from
    another stack), accepted through `peer_provider`.

    `props` is a `RegionPeeringProps` or a mapping of its fields (validated here, so a mistake names
    this construct's path). Escape hatches: `connection`, `accepter`, `routes`."""

    def __init__(self, scope: Construct, id: str, props: RegionPeeringProps | Mapping[str, Any]) -> None:
        props = props_for(child_path(scope, id), RegionPeeringProps, props)
        super().__init__(scope, id)
        self.props = props
        name, peer_region, peer_provider = props.name, props.peer_region, props.peer_provider
        self.connection = VpcPeeringConnection(
            self, "request", vpc_id=props.network.vpc.id, peer_vpc_id=props.peer.vpc.id, peer_region=peer_region,
            auto_accept=False, tags={"Name": f"{name}-to-{peer_region}"},
        )
        self.accepter = VpcPeeringConnectionAccepterA(
            self, "accept", vpc_peering_connection_id=self.connection.id, auto_accept=True, provider=peer_provider,
            tags={"Name": f"{name}-to-{peer_region}"},
        )
        self.routes = [
            Route(self, f"to-peer-{index}", route_table_id=table.id, destination_cidr_block=props.peer_cidr,
                  vpc_peering_connection_id=self.accepter.id)
            for index, table in enumerate(props.network.private_route_tables)
        ] + [
            Route(self, f"from-peer-{index}", route_table_id=table.id, destination_cidr_block=props.cidr,
                  vpc_peering_connection_id=self.accepter.id, provider=peer_provider)
            for index, table in enumerate(props.peer.private_route_tables)
        ]
