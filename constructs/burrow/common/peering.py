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
from pydantic import Field, model_validator

from burrow.common.network import Network
from burrow.errors import PropsError
from burrow.names import Ipv4Cidr, RegionName
from burrow.props import Props, child_path, props_for, reference
from constructs import Construct


class RegionPeeringProps(Props):
    """Props of `RegionPeering` (data only: the networks and the peer's provider are the
    constructor's keyword arguments). Every field is required."""

    #: Prefix of the connection's `Name` tag (`<name>-to-<peer_region>`), usually the cluster's name.
    name: str = Field(min_length=1, max_length=200)
    #: The VPC range of this stack's network: the peer's private route tables get a route to it.
    cidr: Ipv4Cidr
    #: The VPC range of the peer network: this network's private route tables get a route to it. It
    #: must not overlap `cidr` (AWS refuses to peer overlapping ranges).
    peer_cidr: Ipv4Cidr
    #: The peer's region.
    peer_region: RegionName

    @model_validator(mode="after")
    def _ranges_apart(self) -> RegionPeeringProps:
        if ipaddress.IPv4Network(self.cidr).overlaps(ipaddress.IPv4Network(self.peer_cidr)):
            raise ValueError(f"cidr {self.cidr} and peer_cidr {self.peer_cidr} overlap: AWS peers only VPCs whose "
                             "ranges are apart (give one network another vpc_cidr)")
        return self


class RegionPeering(Construct):
    """Peers `network` (this stack's region) with `peer` (a network of `peer_region`, usually from
    another stack: cdktf makes the references cross-stack), accepted through `peer_provider` (an AWS
    provider for `peer_region`, in this stack: it accepts the peering and adds the peer's routes).

    `props` is a `RegionPeeringProps` or a mapping of its fields (validated here, so a mistake names
    this construct's path). Escape hatches: `connection`, `accepter`, `routes`."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        props: RegionPeeringProps | Mapping[str, Any],
        *,
        network: Network,
        peer: Network,
        peer_provider: AwsProvider,
    ) -> None:
        path = child_path(scope, id)
        network = reference(path, "network", network, Network)
        peer = reference(path, "peer", peer, Network)
        peer_provider = reference(path, "peer_provider", peer_provider, AwsProvider)
        props = props_for(path, RegionPeeringProps, props)
        if peer is network:
            raise PropsError(path, "peer", peer.node.path, "the same Network as network: a VPC is not peered with itself")
        region = peer_provider.region
        if isinstance(region, str) and not Token.is_unresolved(region) and region != props.peer_region:
            raise PropsError(path, "peer_provider", region, f"a provider for peer_region {props.peer_region!r}: the "
                             "peering must be accepted in the peer's region")
        super().__init__(scope, id)
        self.props = props
        self.network, self.peer, self.peer_provider = network, peer, peer_provider
        name, peer_region = props.name, props.peer_region
        self.connection = VpcPeeringConnection(
            self, "request", vpc_id=network.vpc.id, peer_vpc_id=peer.vpc.id, peer_region=peer_region,
            auto_accept=False, tags={"Name": f"{name}-to-{peer_region}"},
        )
        self.accepter = VpcPeeringConnectionAccepterA(
            self, "accept", vpc_peering_connection_id=self.connection.id, auto_accept=True, provider=peer_provider,
            tags={"Name": f"{name}-to-{peer_region}"},
        )
        self.routes = [
            Route(self, f"to-peer-{index}", route_table_id=table.id, destination_cidr_block=props.peer_cidr,
                  vpc_peering_connection_id=self.accepter.id)
            for index, table in enumerate(network.private_route_tables)
        ] + [
            Route(self, f"from-peer-{index}", route_table_id=table.id, destination_cidr_block=props.cidr,
                  vpc_peering_connection_id=self.accepter.id, provider=peer_provider)
            for index, table in enumerate(peer.private_route_tables)
        ]
