"""`RegionPeering`: one region's VPC peered with another region's of the same environment, so that
the regions' brokers reach each other privately for federation (traffic between regions over a
VPC peering stays on AWS's backbone and is encrypted by AWS).

The peering is requested from this region and accepted in the peer region (through an AWS
provider for that region), and every private route table on both sides gets a route to the other
side's VPC range. The ranges must not overlap; the configuration refuses that before synthesis.
"""

from __future__ import annotations

from cdktf_cdktf_provider_aws.provider import AwsProvider
from cdktf_cdktf_provider_aws.route import Route
from cdktf_cdktf_provider_aws.vpc_peering_connection import VpcPeeringConnection
from cdktf_cdktf_provider_aws.vpc_peering_connection_accepter import VpcPeeringConnectionAccepterA

from burrow.common.network import Network
from constructs import Construct


class RegionPeering(Construct):
    """Peers `network` (this stack's region) with `peer` (a network of `peer_region`, usually from
    another stack), accepted through `peer_provider`.

    Escape hatches: `connection`, `accepter`, `routes`."""

    def __init__(
        self, scope: Construct, id: str, *, name: str, network: Network, cidr: str, peer: Network, peer_cidr: str,
        peer_region: str, peer_provider: AwsProvider,
    ) -> None:
        super().__init__(scope, id)
        self.connection = VpcPeeringConnection(
            self, "request", vpc_id=network.vpc.id, peer_vpc_id=peer.vpc.id, peer_region=peer_region,
            auto_accept=False, tags={"Name": f"{name}-to-{peer_region}"},
        )
        self.accepter = VpcPeeringConnectionAccepterA(
            self, "accept", vpc_peering_connection_id=self.connection.id, auto_accept=True, provider=peer_provider,
            tags={"Name": f"{name}-to-{peer_region}"},
        )
        self.routes = [
            Route(self, f"to-peer-{index}", route_table_id=table.id, destination_cidr_block=peer_cidr,
                  vpc_peering_connection_id=self.accepter.id)
            for index, table in enumerate(network.private_route_tables)
        ] + [
            Route(self, f"from-peer-{index}", route_table_id=table.id, destination_cidr_block=cidr,
                  vpc_peering_connection_id=self.accepter.id, provider=peer_provider)
            for index, table in enumerate(peer.private_route_tables)
        ]
