"""`DeliveryRoles`: the IAM roles Burrow's GitHub workflows assume in an environment's account,
each obtainable only with a GitHub OIDC token whose subject names a workflow context nobody can
reach from a pull request's code.

The roles, their OIDC subjects and what each may do are tabled in docs/delivery-security.md.

A GitHub environment lets a job in only from `main`'s workflow files, and after an approval where
it has required reviewers (`.github/environments.json`, docs/delivery-security.md).

GitHub's OIDC provider (`token.actions.githubusercontent.com`) is one per AWS account and shared by
the account's environments, so it is referenced here, not created.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from pydantic import Field, field_validator

from burrow.names import AccountId, Arn, BucketName
from burrow.props import Props, child_path, props_for
from constructs import Construct

ISSUER = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"
REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
MAIN = "ref:refs/heads/main"
PLAN_ENVIRONMENT = "plan"
PREVIEW_ENVIRONMENTS = ("preview", "preview-cleanup")
# What a plan reads: descriptions of the account's resources, never a secret's value or an object
# outside the state bucket (the backup bucket holds the brokers' data).
READ_ONLY_ACTIONS = [
    "acm:Describe*",
    "acm:List*",
    "ec2:Describe*",
    "ecr:Describe*",
    "ecr:GetLifecyclePolicy",
    "ecr:GetRepositoryPolicy",
    "ecr:ListTagsForResource",
    "eks:Describe*",
    "eks:List*",
    "events:Describe*",
    "events:List*",
    "iam:Get*",
    "iam:List*",
    "kms:Describe*",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:List*",
    "logs:Describe*",
    "logs:ListTagsForResource",
    "route53:Get*",
    "route53:List*",
    "s3:GetAccelerateConfiguration",
    "s3:GetBucket*",
    "s3:GetEncryptionConfiguration",
    "s3:GetLifecycleConfiguration",
    "s3:GetReplicationConfiguration",
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetResourcePolicy",
    "secretsmanager:ListSecrets",
    "sqs:GetQueueAttributes",
    "sqs:ListQueueTags",
    "sts:GetCallerIdentity",
]
ROLE_KINDS = ("deploy", "plan", "images", "previews")
# The AWS services whose resources the environment's stacks create (autoscaling: EKS node groups).
DEPLOYED_SERVICES = (
    "acm",
    "autoscaling",
    "ec2",
    "ecr",
    "eks",
    "events",
    "kms",
    "logs",
    "route53",
    "s3",
    "secretsmanager",
    "sqs",
)
# Roles and the clusters' OIDC providers (IRSA), and handing a role to a service.
IAM_ACTIONS = [
    "iam:AttachRolePolicy",
    "iam:CreateRole",
    "iam:DeleteRole",
    "iam:DeleteRolePolicy",
    "iam:DetachRolePolicy",
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
    "iam:ListRolePolicies",
    "iam:ListRoleTags",
    "iam:PassRole",
    "iam:PutRolePolicy",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:UpdateAssumeRolePolicy",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
    "iam:*OpenIDConnectProvider*",
]
PUSH_ACTIONS = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:CompleteLayerUpload",
    "ecr:DescribeImageScanFindings",
    "ecr:DescribeImages",
    "ecr:GetDownloadUrlForLayer",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
]


def subject(repository: str, context: str) -> str:
    """The `sub` claim of a GitHub OIDC token from `repository` in `context`."""
    return f"repo:{repository}:{context}"


def github_trust(provider_arn: str, subjects: list[str]) -> str:
    """Who may assume a role: GitHub's OIDC tokens for AWS whose subject is one of `subjects`."""
    statement = {
        "Effect": "Allow",
        "Principal": {"Federated": provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{ISSUER}:aud": AUDIENCE, f"{ISSUER}:sub": subjects}},
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]}, separators=(",", ":"))


def policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, separators=(",", ":"))


def deploy_policy(props: DeliveryRolesProps) -> str:
    """What applying an environment's stacks needs: the services Burrow manages, IAM only on the
    environment's own roles (`<name>-*`) and its clusters' OIDC providers, and never a change to the
    delivery roles themselves (CI cannot widen its own rights; that is the bootstrap's)."""
    iam = f"arn:aws:iam::{props.account_id}"
    delivery = [f"{iam}:role/{props.name}-{kind}" for kind in ROLE_KINDS]
    return policy(
        {
            "Sid": "ManageTheServices",
            "Effect": "Allow",
            "Action": [f"{service}:*" for service in DEPLOYED_SERVICES],
            "Resource": "*",
        },
        {
            "Sid": "ManageTheEnvironmentsRoles",
            "Effect": "Allow",
            "Action": IAM_ACTIONS,
            "Resource": [f"{iam}:role/{props.name}-*", f"{iam}:oidc-provider/oidc.eks.*"],
        },
        {
            "Sid": "LetServicesCreateTheirRoles",
            "Effect": "Allow",
            "Action": "iam:CreateServiceLinkedRole",
            "Resource": f"{iam}:role/aws-service-role/*",
        },
        {
            "Sid": "NeverChangeTheDeliveryRoles",
            "Effect": "Deny",
            "NotAction": ["iam:Get*", "iam:List*"],
            "Resource": delivery,
        },
    )


#: The longest kind a role's name ends in (`-previews`): IAM allows role names of 64 characters.
_LONGEST_SUFFIX = max(len(f"-{kind}") for kind in ROLE_KINDS)


class DeliveryRolesProps(Props):
    """Props of `DeliveryRoles`: what the roles of one environment need to know. Required: all but
    `repositories` and `previews`."""

    #: The GitHub repository (`owner/name`) whose workflows may assume the roles.
    repository: str
    #: Prefix of the roles' names (`burrow-<env>`): each role is `<name>-<kind>`, which IAM allows
    #: up to 64 characters of letters, digits and `+=,.@_-`.
    name: str = Field(pattern=rf"^[A-Za-z0-9+=,.@_-]{{1,{64 - _LONGEST_SUFFIX}}}$")
    #: The environment; its deploy jobs run in the GitHub environment of the same name.
    environment: str = Field(min_length=1, max_length=255, pattern=r"^[^:]+$")
    #: The environment's AWS account (the OIDC provider's).
    account_id: AccountId
    #: The environment's state bucket.
    state_bucket: BucketName
    #: The folder of the environment's state keys in `state_bucket` (`<env>`, `<env>/<region>`).
    state_prefix: str = Field(pattern=r"^[^/*]+(/[^/*]+)*$")
    #: ARNs of the environment's ECR repositories (images and previews push there). default: none
    repositories: tuple[Arn, ...] = ()
    #: A role for pull-request previews hosted in this environment. default: none
    previews: bool = False

    @field_validator("repository")
    @classmethod
    def _owner_slash_name(cls, repository: str) -> str:
        if not REPOSITORY.fullmatch(repository):
            raise ValueError("owner/name of the GitHub repository whose workflows assume the roles")
        return repository


class DeliveryRoles(Construct):
    """The deploy, plan and images roles of one environment, and its previews role when it hosts
    previews. `props` is a `DeliveryRolesProps` or a mapping of its fields (validated here, so a
    mistake names this construct's path). Escape hatch: `roles` (by kind: deploy, plan, images,
    previews)."""

    def __init__(self, scope: Construct, id: str, props: DeliveryRolesProps | Mapping[str, Any]) -> None:
        props = props_for(child_path(scope, id), DeliveryRolesProps, props)
        super().__init__(scope, id)
        self.props = props
        self.provider_arn = f"arn:aws:iam::{props.account_id}:oidc-provider/{ISSUER}"
        state = f"arn:aws:s3:::{props.state_bucket}"
        ours = f"{state}/{props.state_prefix}"
        read_state = [
            {"Sid": "ListTheState", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": state},
            {"Sid": "ReadTheState", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{ours}/*"},
        ]
        push = [
            {"Sid": "LogIn", "Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
            {"Sid": "Push", "Effect": "Allow", "Action": PUSH_ACTIONS, "Resource": list(props.repositories)},
        ]
        contexts = {
            "deploy": ([f"environment:{props.environment}"], deploy_policy(props)),
            "plan": (
                [f"environment:{PLAN_ENVIRONMENT}"],
                policy(
                    {"Sid": "Describe", "Effect": "Allow", "Action": READ_ONLY_ACTIONS, "Resource": "*"},
                    *read_state,
                    {
                        "Sid": "LockTheState",
                        "Effect": "Allow",
                        "Action": ["s3:PutObject", "s3:DeleteObject"],
                        "Resource": f"{ours}/*.tflock",
                    },
                ),
            ),
            "images": ([MAIN], policy(*push)),
        }
        if props.previews:
            contexts["previews"] = (
                [f"environment:{env}" for env in PREVIEW_ENVIRONMENTS],
                policy(
                    *push,
                    *read_state,
                    {
                        "Sid": "WriteThePreviewsState",
                        "Effect": "Allow",
                        "Action": ["s3:PutObject", "s3:DeleteObject"],
                        "Resource": f"{ours}/previews/*",
                    },
                    {"Sid": "FindTheCluster", "Effect": "Allow", "Action": "eks:DescribeCluster", "Resource": "*"},
                ),
            )
        self.roles: dict[str, IamRole] = {}
        for kind, (context, permissions) in contexts.items():
            role = IamRole(
                self,
                kind,
                name=f"{props.name}-{kind}",
                max_session_duration=3600,
                assume_role_policy=github_trust(self.provider_arn, [subject(props.repository, c) for c in context]),
            )
            IamRolePolicy(self, f"{kind}-policy", role=role.name, name=kind, policy=permissions)
            self.roles[kind] = role
