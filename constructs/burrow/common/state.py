"""`PrivateBucket`: an S3 bucket for data nobody outside the account reads, and `StateStorage`,
the one that holds every stack's Terraform state for one environment, under a key of its own and
readable and writable only by the roles that deploy and plan (`burrow.common.access`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
)
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import (
    S3BucketVersioningA,
    S3BucketVersioningVersioningConfiguration,
)
from pydantic import Field, model_validator

from burrow.common.access import deny_to, deny_unless, restricted_key_policy, state_key_alias
from burrow.names import BucketName
from burrow.props import Props, child_path, props_for
from constructs import Construct


def tls_only_policy(bucket: str, *statements: dict) -> str:
    """A bucket policy that refuses every request not made over TLS, and what `statements` refuse."""
    arn = f"arn:aws:s3:::{bucket}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [arn, f"{arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
                *statements,
            ],
        },
        indent=2,
    )


class PrivateBucket(Construct):
    """A versioned, KMS-encrypted, private, TLS-only bucket whose old object versions expire.

    `kms_key_arn` names the key (default: the account's `aws/s3` key); `expire_days` also expires
    current objects (a backstop for data with a retention); `protect` makes Terraform refuse to
    destroy it; `statements` are added to its policy (denials of principals, say). Escape hatch: `bucket`.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        bucket_name: str,
        protect: bool = True,
        noncurrent_days: int = 90,
        expire_days: int | None = None,
        kms_key_arn: str | None = None,
        lifecycle_rule: str = "expire-old-versions",
        statements: Sequence[dict] = (),
    ) -> None:
        super().__init__(scope, id)
        self.bucket = S3Bucket(
            self,
            "bucket",
            bucket=bucket_name,
            lifecycle=TerraformResourceLifecycle(prevent_destroy=protect),
        )
        S3BucketVersioningA(
            self,
            "versioning",
            bucket=self.bucket.id,
            versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"),
        )
        S3BucketServerSideEncryptionConfigurationA(
            self,
            "encryption",
            bucket=self.bucket.id,
            rule=[
                S3BucketServerSideEncryptionConfigurationRuleA(
                    apply_server_side_encryption_by_default=S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                        sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn
                    ),
                    bucket_key_enabled=True,
                )
            ],
        )
        S3BucketPublicAccessBlock(
            self,
            "public-access",
            bucket=self.bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
        )
        S3BucketPolicy(self, "tls-only", bucket=self.bucket.id, policy=tls_only_policy(bucket_name, *statements))
        S3BucketLifecycleConfiguration(
            self,
            "lifecycle",
            bucket=self.bucket.id,
            rule=[
                S3BucketLifecycleConfigurationRule(
                    id=lifecycle_rule,
                    status="Enabled",
                    filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                    expiration=[S3BucketLifecycleConfigurationRuleExpiration(days=expire_days)] if expire_days else None,
                    noncurrent_version_expiration=[
                        S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(noncurrent_days=noncurrent_days)
                    ],
                    abort_incomplete_multipart_upload=[
                        S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(days_after_initiation=7)
                    ],
                )
            ],
        )


@dataclass(frozen=True)
class StateAccess:
    """Who may use an environment's state bucket and its key (role ARNs of its account).

    `deployers` read and write every state and administer the bucket and key (the deploy role and
    the bootstrap/administrator roles); `planners` read every state and write only lock files (the
    plan role: `terraform plan` takes the lock); `previews` read the host's cluster state (the
    three outputs a preview needs) and read and write state only under `<previews_prefix>`.
    """

    account_id: str
    deployers: tuple[str, ...]
    planners: tuple[str, ...] = ()
    previews: tuple[str, ...] = ()
    previews_prefix: str = ""
    previews_read: tuple[str, ...] = ()

    def statements(self, bucket: str) -> list[dict]:
        arn = f"arn:aws:s3:::{bucket}"
        everyone = [*self.deployers, *self.planners, *self.previews]
        statements = [
            deny_unless("OnlyDeployersPlannersAndPreviews", ["s3:*"], everyone, resource=[arn, f"{arn}/*"]),
            deny_unless("OnlyDeployersChangeTheBucket", ["s3:PutBucket*", "s3:DeleteBucket*", "s3:PutEncryptionConfiguration",
                        "s3:PutLifecycleConfiguration"], self.deployers, resource=[arn]),
        ]
        if self.planners:
            statements.append(deny_to("PlannersWriteOnlyLocks", ["s3:PutObject", "s3:DeleteObject"], self.planners,
                                      not_resource=[f"{arn}/*.tflock"]))
        if self.previews:
            own = f"{arn}/{self.previews_prefix}*"
            statements += [
                deny_to("PreviewsWriteOnlyTheirPrefix", ["s3:PutObject", "s3:DeleteObject"], self.previews,
                        not_resource=[own]),
                deny_to("PreviewsReadOnlyTheirPrefix", ["s3:GetObject"], self.previews,
                        not_resource=[own, *(f"{arn}/{key}" for key in self.previews_read)]),
            ]
        return statements

    def key_policy(self) -> str:
        return restricted_key_policy(self.account_id, self.deployers,
                                     [*self.deployers, *self.planners, *self.previews])


class StateStorageProps(Props):
    """Props of `StateStorage`. Required: `bucket_name`."""

    #: The bucket's name (S3's naming rules; names are global, so one per environment and account).
    bucket_name: BucketName
    #: Terraform refuses to destroy the bucket (it holds every stack's state). default: True
    protect: bool = True
    #: Days an old state version is kept before it expires (the current one never does). default: 90
    noncurrent_days: int = Field(default=90, ge=1)
    #: Who may use the bucket and its key: given, the bucket gets a customer-managed key of its own
    #: and a policy admitting only these roles. default: none (the account's principals, as their IAM
    #: policies allow, and the `aws/s3` key). A `StateAccess` or a mapping of its fields.
    access: StateAccess | None = None

    @model_validator(mode="after")
    def _key_alias_fits(self) -> StateStorageProps:
        if self.access is not None and "." in self.bucket_name:
            raise ValueError(f"with access, the bucket's key is aliased {state_key_alias(self.bucket_name)!r}, and a "
                             "KMS alias allows no '.': name the bucket without dots")
        return self


class StateStorage(PrivateBucket):
    """The state bucket: a `PrivateBucket` Terraform refuses to destroy, under a customer-managed
    key, that only `access` admits (none: the account's principals as their IAM policies allow, and
    the `aws/s3` key).

    Locking uses S3-native lock files (`use_lockfile`), so no DynamoDB table is needed.
    `props` is a `StateStorageProps` or a mapping of its fields (validated here, so a mistake names
    this construct's path). Escape hatches: `bucket`, `kms_key` (None without `access`).
    """

    def __init__(self, scope: Construct, id: str, props: StateStorageProps | Mapping[str, Any]) -> None:
        props = props_for(child_path(scope, id), StateStorageProps, props)
        bucket_name, access = props.bucket_name, props.access
        key = None
        if access is not None:
            # The key is created in the same scope, before the bucket's constructs need its ARN.
            key = KmsKey(scope, f"{id}-key", description=f"Encrypts Terraform state in {bucket_name}",
                         enable_key_rotation=True, deletion_window_in_days=30, policy=access.key_policy())
            KmsAlias(scope, f"{id}-key-alias", name=state_key_alias(bucket_name), target_key_id=key.key_id)
        super().__init__(scope, id, bucket_name=bucket_name, protect=props.protect,
                         noncurrent_days=props.noncurrent_days, lifecycle_rule="expire-old-state-versions",
                         kms_key_arn=key.arn if key else None,
                         statements=access.statements(bucket_name) if access else ())
        self.props = props
        self.kms_key = key
