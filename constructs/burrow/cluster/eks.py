"""`EksCluster`: the EKS cluster provider. Returns a `TokenCluster` that other stacks use to connect."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from cdktf import Fn
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.data_aws_iam_policy_document import (
    DataAwsIamPolicyDocument,
    DataAwsIamPolicyDocumentStatement,
    DataAwsIamPolicyDocumentStatementCondition,
    DataAwsIamPolicyDocumentStatementPrincipals,
)
from cdktf_cdktf_provider_aws.eks_access_entry import EksAccessEntry
from cdktf_cdktf_provider_aws.eks_access_policy_association import (
    EksAccessPolicyAssociation,
    EksAccessPolicyAssociationAccessScope,
)
from cdktf_cdktf_provider_aws.eks_addon import EksAddon
from cdktf_cdktf_provider_aws.eks_cluster import (
    EksCluster as EksClusterResource,
)
from cdktf_cdktf_provider_aws.eks_cluster import (
    EksClusterAccessConfig,
    EksClusterEncryptionConfig,
    EksClusterEncryptionConfigProvider,
    EksClusterVpcConfig,
)
from cdktf_cdktf_provider_aws.eks_node_group import EksNodeGroup, EksNodeGroupScalingConfig, EksNodeGroupUpdateConfig
from cdktf_cdktf_provider_aws.iam_openid_connect_provider import IamOpenidConnectProvider
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy_attachment import IamRolePolicyAttachment
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from pydantic import AfterValidator, Field, field_validator

from burrow.cluster.settings import ApiAccessConfig, EksClusterSettings, PrincipalArn
from burrow.common.access import key_policy
from burrow.k8s.versions import offered_on, today
from burrow.names import EksClusterName, RegionName
from burrow.props import Props, child_path, props_for
from burrow.settings import distinct
from burrow.spi import TokenCluster
from constructs import Construct

MANAGED_POLICY = "arn:aws:iam::aws:policy/"
CLUSTER_POLICIES = ("AmazonEKSClusterPolicy",)
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")
EBS_CSI_POLICY = "service-role/AmazonEBSCSIDriverPolicy"
EBS_CSI_SERVICE_ACCOUNT = "system:serviceaccount:kube-system:ebs-csi-controller-sa"
# EKS-managed add-ons the app layer relies on (RabbitMQ volumes need the EBS CSI driver).
CORE_ADDONS = ("vpc-cni", "kube-proxy", "coredns")
#: The VPC CNI's settings. It enforces NetworkPolicy only when asked: `enableNetworkPolicy` starts the
#: network policy agent (the `aws-network-policy-agent` container of the aws-node DaemonSet, eBPF, in
#: every add-on version since v1.14.0; clusters of Kubernetes 1.25 or later, which every version
#: Burrow supports is); without it the default-deny, broker isolation and ingress rules are accepted
#: and ignored. The version is EKS's default for the cluster's Kubernetes version (v1.19 or later for
#: 1.31+), so no pin is needed for the agent.
VPC_CNI_SETTINGS = {"enableNetworkPolicy": "true"}
ADDON_SETTINGS = {"vpc-cni": VPC_CNI_SETTINGS}


def service_trust_policy(service: str) -> str:
    """A trust policy that lets one AWS service assume the role."""
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def irsa_trust(
    scope: Construct, id: str, oidc_provider_arn: str, issuer: str, service_account: str
) -> DataAwsIamPolicyDocument:
    """A trust policy that lets exactly one Kubernetes service account (`system:serviceaccount:<ns>:<name>`)
    assume a role, through the cluster's OIDC provider (IRSA)."""
    host = Fn.replace(issuer, "https://", "")
    return DataAwsIamPolicyDocument(
        scope,
        id,
        statement=[
            DataAwsIamPolicyDocumentStatement(
                actions=["sts:AssumeRoleWithWebIdentity"],
                principals=[DataAwsIamPolicyDocumentStatementPrincipals(type="Federated", identifiers=[oidc_provider_arn])],
                condition=[
                    DataAwsIamPolicyDocumentStatementCondition(
                        test="StringEquals", variable=f"{host}:sub", values=[service_account]
                    ),
                    DataAwsIamPolicyDocumentStatementCondition(
                        test="StringEquals", variable=f"{host}:aud", values=["sts.amazonaws.com"]
                    ),
                ],
            )
        ],
    )


#: Tag the EBS CSI driver puts on every volume it creates: which cluster's volume it is (Velero's
#: snapshot permissions are scoped by it).
VOLUME_CLUSTER_TAG = "burrow.dev/cluster"
#: Cluster admin: the add-ons install CRDs and ClusterRoles, which the narrower AmazonEKSAdminPolicy cannot.
CLUSTER_ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


def service_role(
    scope: Construct, id: str, name: str, service: str, policies: Sequence[str]
) -> tuple[IamRole, list[IamRolePolicyAttachment]]:
    """A role for an AWS service with AWS managed policies (dependents wait for the attachments)."""
    role = IamRole(scope, id, name=name, assume_role_policy=service_trust_policy(service))
    attachments = [
        IamRolePolicyAttachment(scope, f"{id}-{policy}", role=role.name, policy_arn=MANAGED_POLICY + policy)
        for policy in policies
    ]
    return role, attachments


#: The suffixes of the cluster's own IAM roles' names (`<name>-cluster`, ...).
ROLE_SUFFIXES = ("-cluster", "-node", "-ebs-csi")
#: IAM allows role names of 64 characters.
MAX_NAME_LENGTH = 64 - max(len(suffix) for suffix in ROLE_SUFFIXES)


def _fits_role_names(value: str) -> str:
    if len(value) > MAX_NAME_LENGTH:
        raise ValueError(
            f"at most {MAX_NAME_LENGTH} characters: its IAM roles are named <name>{', <name>'.join(ROLE_SUFFIXES)}, "
            "and IAM allows 64"
        )
    return value


def _released(value: str) -> str:
    """A version EKS runs today: released, and in standard or extended support (after that, EKS
    neither creates a cluster on it nor keeps one there)."""
    offered = offered_on(today(), extended=True)
    if value not in offered:
        raise ValueError(f"a Kubernetes version EKS runs today (standard or extended support): {', '.join(offered)}")
    return value


class EksClusterProps(EksClusterSettings, Props):
    """Props of `EksCluster`: the environment's `cluster.eks` settings it builds from (`log_types`,
    `node_groups`, inherited from `EksClusterSettings` with their defaults) plus where and how the
    cluster runs. Required: `name`, `kubernetes_version`, `region`, `subnet_ids`, `node_groups`."""

    #: The cluster's name, and the prefix of its IAM roles' names (`<name>-cluster`, `<name>-node`,
    #: `<name>-ebs-csi`).
    name: Annotated[EksClusterName, AfterValidator(_fits_role_names)]
    #: The Kubernetes minor version (`1.33`): one EKS has released (`burrow.k8s.versions`).
    kubernetes_version: Annotated[str, AfterValidator(_released)]
    #: The cluster's region, given to the providers of the stacks that connect to it (`info.region`).
    region: RegionName
    #: The subnets of the control plane's network interfaces and of the node groups (the network's
    #: private ones: `Network.private_subnet_ids`); literal ids or cdktf references.
    subnet_ids: tuple[str, ...] = Field(min_length=1)
    #: Where deploys reach the API from. default: inside the VPC only (no public endpoint)
    api_access: ApiAccessConfig = ApiAccessConfig()
    #: IAM roles or users given cluster admin by access entries. default: none, and then the
    #: cluster's creator is its admin (the provider sends `bootstrap_cluster_creator_admin_permissions
    #: = false` unless told); listed: exactly these, nobody implicitly.
    admins: tuple[PrincipalArn, ...] = ()

    @field_validator("admins")
    @classmethod
    def _distinct_admins(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return distinct(values, "principal")


class EksCluster(Construct):
    """An EKS cluster with encrypted Secrets, managed node groups in private subnets, IRSA and
    the core add-ons.

    `props` is an `EksClusterProps` or a mapping of its fields. Escape hatches: `cluster`, `node_groups`,
    `oidc_provider`, `cluster_role`, `node_role`, `kms_key`, `admin_entries` (by principal).
    `info` is the `ClusterInfo` other stacks use to talk to the cluster.
    """

    def __init__(self, scope: Construct, id: str, props: EksClusterProps | Mapping[str, Any]) -> None:
        """`props`: an `EksClusterProps` or a mapping of its fields (validated here, so a mistake names
        this construct's path)."""
        props = props_for(child_path(scope, id), EksClusterProps, props)
        super().__init__(scope, id)
        self.props = props
        name, api_access, admins = props.name, props.api_access, props.admins
        account = DataAwsCallerIdentity(self, "account")
        self.kms_key = KmsKey(
            self,
            "secrets-key",
            description=f"Encrypts Kubernetes Secrets of EKS cluster {name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=key_policy(account.account_id),
        )
        self.name = name
        self.cluster_role, cluster_policies = service_role(
            self, "cluster-role", f"{name}-cluster", "eks.amazonaws.com", CLUSTER_POLICIES
        )
        self.cluster = EksClusterResource(
            self,
            "cluster",
            name=name,
            version=props.kubernetes_version,
            role_arn=self.cluster_role.arn,
            enabled_cluster_log_types=list(props.log_types),
            # Explicit either way: AWS provider 5.x sends false for an unset flag in `access_config`.
            # With named admins, nobody implicitly (the creator's entry would clash with an explicit one).
            access_config=EksClusterAccessConfig(
                authentication_mode="API", bootstrap_cluster_creator_admin_permissions=not admins
            ),
            vpc_config=EksClusterVpcConfig(
                subnet_ids=list(props.subnet_ids),
                endpoint_private_access=True,
                endpoint_public_access=api_access.public,
                public_access_cidrs=list(api_access.public_cidrs) or None,
            ),
            encryption_config=EksClusterEncryptionConfig(
                resources=["secrets"], provider=EksClusterEncryptionConfigProvider(key_arn=self.kms_key.arn)
            ),
            depends_on=cluster_policies,
        )
        self.admin_entries = {}
        for index, principal in enumerate(admins):
            entry = EksAccessEntry(self, f"admin-{index}", cluster_name=self.cluster.name, principal_arn=principal,
                                   type="STANDARD")
            EksAccessPolicyAssociation(
                self, f"admin-{index}-policy", cluster_name=self.cluster.name, principal_arn=entry.principal_arn,
                policy_arn=CLUSTER_ADMIN_POLICY, access_scope=EksAccessPolicyAssociationAccessScope(type="cluster"),
            )
            self.admin_entries[principal] = entry
        self.node_role, node_policies = service_role(self, "node-role", f"{name}-node", "ec2.amazonaws.com", NODE_POLICIES)
        self.node_groups = {
            group_name: EksNodeGroup(
                self,
                f"nodes-{group_name}",
                cluster_name=self.cluster.name,
                node_group_name=group_name,
                node_role_arn=self.node_role.arn,
                subnet_ids=list(props.subnet_ids),
                instance_types=list(group.instance_types),
                ami_type=group.ami_type,
                capacity_type=group.capacity_type,
                disk_size=group.disk_size_gib,
                scaling_config=EksNodeGroupScalingConfig(
                    min_size=group.min_size, max_size=group.max_size, desired_size=group.desired_size
                ),
                update_config=EksNodeGroupUpdateConfig(max_unavailable=1),
                depends_on=node_policies,
            )
            for group_name, group in props.node_groups.items()
        }
        issuer = self.issuer = self.cluster.identity.get(0).oidc.get(0).issuer
        self.oidc_provider = IamOpenidConnectProvider(
            self, "oidc", url=issuer, client_id_list=["sts.amazonaws.com"]
        )
        nodes = list(self.node_groups.values())
        for addon in CORE_ADDONS:
            EksAddon(
                self,
                f"addon-{addon}",
                cluster_name=self.cluster.name,
                addon_name=addon,
                configuration_values=json.dumps(ADDON_SETTINGS[addon]) if addon in ADDON_SETTINGS else None,
                resolve_conflicts_on_update="OVERWRITE",
                depends_on=nodes if addon == "coredns" else None,
            )
        EksAddon(
            self,
            "addon-aws-ebs-csi-driver",
            cluster_name=self.cluster.name,
            addon_name="aws-ebs-csi-driver",
            service_account_role_arn=self._irsa_role("ebs-csi-role", f"{name}-ebs-csi", issuer).arn,
            configuration_values=json.dumps({"controller": {"extraVolumeTags": {VOLUME_CLUSTER_TAG: name}}}),
            resolve_conflicts_on_update="OVERWRITE",
            depends_on=nodes,
        )
        self.info = TokenCluster(
            name=self.cluster.name,
            endpoint=self.cluster.endpoint,
            certificate_authority=self.cluster.certificate_authority.get(0).data,
            region=props.region,
            version=props.kubernetes_version,
        )

    def _irsa_role(self, id: str, name: str, issuer: str) -> IamRole:
        """A role only the EBS CSI controller's service account can assume, through the cluster's OIDC provider."""
        trust = irsa_trust(self, f"{id}-trust", self.oidc_provider.arn, issuer, EBS_CSI_SERVICE_ACCOUNT)
        role = IamRole(self, id, name=name, assume_role_policy=trust.json)
        IamRolePolicyAttachment(self, f"{id}-policy", role=role.name, policy_arn=MANAGED_POLICY + EBS_CSI_POLICY)
        return role
