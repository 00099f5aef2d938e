"""The AWS layers: `CommonLayer` (`<env>-common`) and `ClusterLayer` (`<env>-cluster`).

Only environments whose cluster is EKS import this module (the AWS bindings take
10-15 s to load).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

from cdktf import TerraformOutput
from cdktf_cdktf_provider_aws.provider import (
    AwsProvider,
    AwsProviderAssumeRole,
    AwsProviderDefaultTags,
    AwsProviderEndpoints,
)

from burrow.addons.cert_manager import NAMESPACE as CERT_MANAGER_NAMESPACE
from burrow.addons.keda import NAMESPACE as KEDA_NAMESPACE
from burrow.app.broker_users import ROLES, secret_key
from burrow.cluster.backups import BackupAccessRole, velero_role_name
from burrow.cluster.credentials import FEDERATION, FEDERATION_CA, GENERATED, PUBLISH_TOKEN, GeneratedCredentials
from burrow.cluster.edge import PublicEntry
from burrow.cluster.eks import EksCluster
from burrow.cluster.karpenter import NodeAutoscaling
from burrow.common.access import role_arns, root
from burrow.common.backups import BackupStorage
from burrow.common.delivery import DeliveryRoles
from burrow.common.network import Network
from burrow.common.peering import RegionPeering
from burrow.common.registry import ContainerRegistry
from burrow.common.state import StateAccess, StateStorage
from burrow.config.schema import EnvironmentConfig, Tier
from burrow.spi import ClusterInfo
from burrow.stacks.app import broker_host
from burrow.stacks.base import BurrowStack
from constructs import Construct

IMAGES = ("producer", "consumer")
BOOTSTRAP_VARIABLE = "BURROW_BOOTSTRAP"
EMULATOR_VARIABLE = "BURROW_AWS_ENDPOINT"
EMULATED_SERVICES = ("acm", "ec2", "ecr", "eks", "events", "iam", "kms", "logs", "route53", "s3", "secretsmanager",
                     "sqs", "sts")


def cluster_name(env: EnvironmentConfig) -> str:
    """`burrow-<env>`, or `burrow-<env>-<region>` outside the primary region: the cluster's name and
    the prefix of every name AWS keeps globally (IAM roles, S3 buckets)."""
    return f"burrow-{env.stack_prefix}"


def cluster_admins(env: EnvironmentConfig) -> list[str]:
    """The principals given cluster admin by access entries: `cluster.eks.admin_principals`, and
    `aws.role_arn` (the role the stacks and `aws eks get-token` use) with them. None listed: the
    cluster's creator is its admin (the role the stacks assume, or the deploying identity)."""
    assert env.cluster.eks is not None
    listed = list(env.cluster.eks.admin_principals)
    if listed and env.aws.role_arn and env.aws.role_arn not in listed:
        listed.insert(0, env.aws.role_arn)
    return listed


def emulator_endpoint() -> str | None:
    """The AWS API emulator's URL in a rehearsal (`make e2e-aws`), else None (real AWS)."""
    return os.environ.get(EMULATOR_VARIABLE) or None


class AwsStack(BurrowStack):
    """A Burrow stack with the AWS provider (`aws`) in the environment's region.

    In an emulator rehearsal (`BURROW_AWS_ENDPOINT` set) the provider talks only to that
    endpoint with dummy credentials, and state is local, shared between the stacks by path.
    """

    def __init__(self, scope: Construct, env: EnvironmentConfig, layer: str, *, local_state: bool = False) -> None:
        super().__init__(scope, env, layer, local_state=local_state or emulator_endpoint() is not None)
        self.aws = self.provider_in(env.aws.region)

    def provider_in(self, region: str, alias: str | None = None) -> AwsProvider:
        """An AWS provider of this stack in `region` (`alias` for any but the stack's own region),
        every resource tagged with project and environment.

        Terraform refuses to plan or apply with credentials of any other account than the
        environment's (asked of STS, in the emulator too), so prod's configuration can never land
        in the qa account."""
        env = self.env
        settings = {
            "region": region,
            "alias": alias,
            "default_tags": [AwsProviderDefaultTags(tags={"Project": "burrow", "Environment": env.name,
                                                          "ManagedBy": "burrow"})],
            "allowed_account_ids": [env.aws.account_id] if env.aws.account_id else None,
            "assume_role": [aws_assume_role(env)] if env.aws.role_arn else None,
        }
        endpoint = emulator_endpoint()
        if endpoint is not None:
            settings.update(
                access_key="emulator",
                secret_key="emulator",  # noqa: S106 - the emulator accepts any credentials
                skip_credentials_validation=True,
                skip_metadata_api_check="true",
                s3_use_path_style=True,
                endpoints=[AwsProviderEndpoints(**{service: endpoint for service in EMULATED_SERVICES})],
            )
        return AwsProvider(self, f"aws-{alias}" if alias else "aws", **settings)


def shared_secrets(env: EnvironmentConfig) -> dict[str, tuple[str, ...]]:
    """The secrets that hold one value for the whole environment -> the regions that read them."""
    needed = {}
    if env.ingress.enabled and env.ingress.authentication == "token":
        needed.update({key: tuple(env.region_names) for key in PUBLISH_TOKEN})
    if env.federated_regions:
        needed.update({key: tuple(env.federated_regions) for key in {**FEDERATION, **FEDERATION_CA}})
    return needed


def secret_readers(env: EnvironmentConfig) -> dict[str, tuple[str, ...]]:
    """Who reads which generated secret in this region: consumer namespace -> secret keys. The app
    reads the broker's credentials (its definitions hold every user's password) and the environment's
    shared secrets it uses; `monitoring` Grafana's password; KEDA the broker's monitoring user's
    password only (its scaler's AMQP URI); cert-manager the federation CA only (in federated regions)."""
    shared = tuple(key for key, regions in shared_secrets(env).items() if env.aws.region in regions)
    readers = {env.namespace: ("rabbitmq", *(secret_key(role) for role in ROLES),
                               *(key for key in shared if key not in FEDERATION_CA))}
    if env.monitoring.enabled:
        readers[env.monitoring.namespace] = ("grafana",)
    if env.addons.keda.enabled:
        readers[KEDA_NAMESPACE] = (secret_key("monitoring"),)
    ca = tuple(key for key in shared if key in FEDERATION_CA)
    if ca:
        readers[CERT_MANAGER_NAMESPACE] = ca
    return readers


def secret_writers(env: EnvironmentConfig) -> dict[str, tuple[str, ...]]:
    """Who writes which shell in this region: cert-manager's namespace pushes the federation CA
    it makes, in the primary region only (the others read its replica)."""
    made = environment_secrets(env).get("secrets", {})
    ca = tuple(key for key in FEDERATION_CA if key in made)
    return {CERT_MANAGER_NAMESPACE: ca} if ca else {}


def replica_regions(env: EnvironmentConfig) -> list[str]:
    """The regions this region's credentials replicate secrets to (the primary's only)."""
    replicas = environment_secrets(env).get("replicas", {})
    return sorted({r for regions in replicas.values() for r in regions})


def environment_secrets(env: EnvironmentConfig) -> dict:
    """GeneratedCredentials' settings for the secrets that hold one value for the whole environment:
    the public producer's token (`ingress.authentication`), the federation links' password and the
    federation CA's shell. Each is made in the primary region, which is deployed first, and
    replicated by Secrets Manager to the other regions that read it, so no region ever waits for a
    region deployed after it (the CA's value arrives once the primary's cluster has pushed it)."""
    needed = shared_secrets(env)
    if not needed:
        return {}
    if not env.is_primary:
        return {"replicated": tuple(key for key, regions in needed.items() if env.aws.region in regions)}
    generated = {key: fields for key, fields in {**PUBLISH_TOKEN, **FEDERATION, **FEDERATION_CA}.items()
                 if key in needed}
    return {"secrets": {**GENERATED, **generated},
            "replicas": {key: [r for r in regions if r != env.aws.region] for key, regions in needed.items()}}


def aws_assume_role(env: EnvironmentConfig) -> AwsProviderAssumeRole:
    return AwsProviderAssumeRole(role_arn=env.aws.role_arn, external_id=env.aws.external_id,
                                 session_name=f"burrow-{env.name}")


class CommonLayer(AwsStack):
    """`<env>-common`: state storage, container registries, network, and the backup bucket (here so
    that backups outlive the cluster).

    Bootstrap: this stack creates the bucket that holds every stack's state, including its
    own. The first deploy runs with `BURROW_BOOTSTRAP=1` (local state); a second
    `cdktf deploy` without it moves the state into the bucket (see README).
    """

    def __init__(self, scope: Construct, env: EnvironmentConfig, *, peers: Sequence[CommonLayer] = ()) -> None:
        """`peers`: the common layers of earlier regions of the environment this region's network is
        peered with (federation)."""
        super().__init__(scope, env, "common", local_state=os.environ.get(BOOTSTRAP_VARIABLE) == "1")
        # The state bucket and the registries are the environment's, in its primary region.
        assert env.aws.account_id is not None  # required for EKS environments by the configuration checks
        roles = env.aws.roles
        # Unless the environment names the account's own roles, Burrow's delivery roles (DeliveryRoles).
        deploy, plan, preview = (roles.deploy or f"{cluster_name(env)}-deploy", roles.plan or f"{cluster_name(env)}-plan",
                                 roles.preview or f"{cluster_name(env)}-previews")
        deployers = (*role_arns(env.aws.account_id, [deploy, *roles.admins]), root(env.aws.account_id))
        previews = env.previews.enabled
        access = StateAccess(
            account_id=env.aws.account_id, deployers=deployers, planners=tuple(role_arns(env.aws.account_id, [plan])),
            previews=tuple(role_arns(env.aws.account_id, [preview])) if previews else (),
            previews_prefix=f"{env.name}/previews/", previews_read=(f"{env.name}/cluster.tfstate",) if previews else (),
        )
        self.state = StateStorage(self, "state", {"bucket_name": env.state.bucket, "access": access}) if env.is_primary else None
        self.registries = {
            image: ContainerRegistry(self, f"registry-{image}", {"name": f"burrow/{image}",
                                                                   "keep_images": env.registry.keep_images})
            for image in IMAGES
        } if env.is_primary and env.registry.create else {}
        self.network = Network(self, "network", {
            **dict(env.network), "name": cluster_name(env), "cluster_name": cluster_name(env),
            "region": env.aws.region, "node_discovery": env.karpenter is not None})
        self.backups = None
        if env.backups.enabled:
            self.backups = BackupStorage(self, "backups", {
                "env_name": env.stack_prefix, "account_id": env.aws.account_id,
                "retention_days": env.backups.longest_retention_days,
                "writers": role_arns(env.aws.account_id, [velero_role_name(cluster_name(env))]), "managers": deployers})
            TerraformOutput(self, "backup-bucket", value=self.backups.storage.bucket.bucket)
        for image, registry in self.registries.items():
            TerraformOutput(self, f"{image}-repository-url", value=registry.url)
        self.delivery = None
        if env.is_primary and env.aws.github_repository:
            assert env.aws.account_id is not None and env.state.bucket is not None  # EKS environments (schema)
            self.delivery = DeliveryRoles(self, "delivery", {
                "repository": env.aws.github_repository, "name": cluster_name(env), "environment": env.name,
                "account_id": env.aws.account_id, "state_bucket": env.state.bucket, "state_prefix": env.state_prefix,
                "repositories": [registry.repository.arn for registry in self.registries.values()],
                "previews": env.previews.enabled})
            for kind, role in self.delivery.roles.items():
                TerraformOutput(self, f"{kind}-role-arn", value=role.arn)
        self.peerings = [
            RegionPeering(
                self, f"peering-{peer.env.aws.region}",
                {"name": cluster_name(env), "cidr": env.network.vpc_cidr, "peer_cidr": peer.env.network.vpc_cidr,
                 "peer_region": peer.env.aws.region},
                network=self.network, peer=peer.network,
                peer_provider=self.provider_in(peer.env.aws.region, alias=peer.env.aws.region))
            for peer in peers
        ]


class ClusterLayer(AwsStack):
    """`<env>-cluster`: the EKS cluster in the common layer's private subnets, the credentials it
    reads from Secrets Manager, and the AWS side of its add-ons (Karpenter, Velero)."""

    def __init__(
        self, scope: Construct, env: EnvironmentConfig, *, network: Network, backups: BackupStorage | None = None,
        zone: tuple[str, str] | None = None,
    ) -> None:
        """`zone`: (id, name) of the environment's Route 53 zone (`<env>-global`) when the producer
        is public (`ingress.enabled`)."""
        super().__init__(scope, env, "cluster")
        assert env.cluster.eks is not None  # guaranteed by the schema for provider 'eks'
        self.eks = EksCluster(self, "eks", {
            "log_types": env.cluster.eks.log_types, "node_groups": env.cluster.eks.node_groups,
            "name": cluster_name(env), "kubernetes_version": env.kubernetes.version, "region": env.aws.region,
            "subnet_ids": network.private_subnet_ids, "api_access": env.cluster.api_access,
            "admins": cluster_admins(env)})
        assert env.aws.account_id is not None  # required for EKS environments by the configuration checks
        self.credentials = GeneratedCredentials(
            self,
            "credentials",
            prefix=f"burrow/{env.name}",
            role_prefix=f"{cluster_name(env)}-secrets",
            readers=secret_readers(env),
            writers=secret_writers(env),
            providers={r: self.provider_in(r, alias=r) for r in replica_regions(env)},
            # the public producer's token, federation's password: generated in the primary region,
            # replicated to the others
            **environment_secrets(env),
            account_id=env.aws.account_id,
            region=env.aws.region,
            cluster=self.eks,
            recovery_days=30 if env.tier == Tier.PRODUCTION else 7,
        )
        self.node_autoscaling = None
        if env.karpenter is not None:
            self.node_autoscaling = NodeAutoscaling(self, "karpenter", cluster=self.eks, region=env.aws.region,
                                                    account_id=env.aws.account_id,
                                                    spot="spot" in env.karpenter.capacity_types,
                                                    session_manager=env.karpenter.session_manager)
        self.backup_role = None
        if backups is not None:
            self.backup_role = BackupAccessRole(self, "velero", storage=backups, cluster=self.eks,
                                                region=env.aws.region, account_id=env.aws.account_id)
        self.edge = None
        if zone is not None:
            assert env.ingress.host is not None  # required when ingress is enabled (schema)
            self.edge = PublicEntry(self, "edge", {
                "region": env.aws.region, "zone_id": zone[0], "zone_name": zone[1], "host": env.ingress.host,
                "tls": env.ingress.tls, "owns_shared_validation": env.is_primary,
                "dns_names": [broker_host(env, env.aws.region)] if env.federation_peers else []},
                cluster=self.eks, network=network)
        TerraformOutput(self, "cluster-name", value=self.eks.cluster.name)
        TerraformOutput(self, "cluster-endpoint", value=self.eks.cluster.endpoint)
        # Previews of pull requests read these three from this stack's state (burrow.previews).
        TerraformOutput(self, "cluster-certificate-authority", value=self.eks.info.certificate_authority)

    @property
    def cluster_info(self) -> ClusterInfo:
        return replace(
            self.eks.info,
            role_arn=self.env.aws.role_arn,
            secrets=self.credentials.access,
            node_autoscaling=self.node_autoscaling.access if self.node_autoscaling else None,
            backups=self.backup_role.access if self.backup_role else None,
            edge=self.edge.access if self.edge else None,
        )
