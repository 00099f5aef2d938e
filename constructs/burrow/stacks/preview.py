"""`PreviewAppLayer`: the app stack `pr-<n>-app` of one pull request (see `burrow.previews`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdktf import DataTerraformRemoteStateS3, Fn, TerraformStack

from burrow.config.schema import EnvironmentConfig
from burrow.previews import PreviewRequest, preview_config
from burrow.spi import ClusterInfo, get_token_args
from burrow.stacks.app import AppLayer
from burrow.stacks.base import state_access
from constructs import Construct


@dataclass(frozen=True)
class HostCluster(ClusterInfo):
    """The host environment's EKS cluster, read from its cluster stack's state (`cluster-name`,
    `cluster-endpoint`, `cluster-certificate-authority` outputs), so a preview stack needs neither
    the host's stacks in its app nor the AWS provider."""

    host: EnvironmentConfig
    version: str
    multi_zone: bool = True

    def connection(self) -> dict[str, Any]:
        raise NotImplementedError("HostCluster reads its settings in the stack: connection_in(stack)")

    def connection_in(self, stack: TerraformStack) -> dict[str, Any]:
        host = self.host
        state = DataTerraformRemoteStateS3(stack, "host-cluster", bucket=host.state.bucket,
                                           key=f"{host.name}/cluster.tfstate", region=host.primary_region, encrypt=True)
        for key, value in state_access(host, f"burrow-{host.name}-preview").items():
            state.add_override(f"config.{key}", value)
        return {
            "host": state.get_string("cluster-endpoint"),
            "cluster_ca_certificate": Fn.base64decode(state.get_string("cluster-certificate-authority")),
            "exec_args": get_token_args(state.get_string("cluster-name"), host.aws.region, host.aws.role_arn),
        }


class PreviewAppLayer(AppLayer):
    """`pr-<n>-app`: the host's app layer, small, in namespace `burrow-pr-<n>` (labelled with the PR,
    commit and expiry, under a quota), with broker credentials generated in the cluster, its state
    under `<host>/previews/pr-<n>.tfstate`. Guardrails: the `preview` tier."""

    def __init__(self, scope: Construct, host: EnvironmentConfig, request: PreviewRequest, *,
                 rabbitmq_values: tuple = ()) -> None:
        self.request = request
        super().__init__(
            scope,
            preview_config(host, request),
            cluster=HostCluster(host=host, version=host.kubernetes.version),
            rabbitmq_values=rabbitmq_values,
            name=request.stack_name,
            state_key=f"{host.name}/previews/pr-{request.pr}.tfstate",
            namespace_labels=request.labels(host.previews.ttl_hours),
            quota=host.previews.quota,
            in_cluster_credentials=True,
        )
