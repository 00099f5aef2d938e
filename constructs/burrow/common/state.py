"""`PrivateBucket`: an S3 bucket for data nobody outside the account reads, and `StateStorage`,
the one that holds every stack's Terraform state for one environment."""

from __future__ import annotations

import json

from cdktf import TerraformResourceLifecycle
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

from constructs import Construct


def tls_only_policy(bucket: str) -> str:
    """A bucket policy that refuses every request not made over TLS."""
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
                }
            ],
        },
        indent=2,
    )


class PrivateBucket(Construct):
    """A versioned, KMS-encrypted, private, TLS-only bucket whose old object versions expire.

    `kms_key_arn` names the key (default: the account's `aws/s3` key); `expire_days` also expires
    current objects (a backstop for data with a retention); `protect` makes Terraform refuse to
    destroy it. Escape hatch: `bucket`.
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
        S3BucketPolicy(self, "tls-only", bucket=self.bucket.id, policy=tls_only_policy(bucket_name))
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


class StateStorage(PrivateBucket):
    """The state bucket: a `PrivateBucket` Terraform refuses to destroy.

    Locking uses S3-native lock files (`use_lockfile`), so no DynamoDB table is needed.
    Old state versions expire after `noncurrent_days` (the current one never does).
    Escape hatch: `bucket`.
    """

    def __init__(
        self, scope: Construct, id: str, *, bucket_name: str, protect: bool = True, noncurrent_days: int = 90
    ) -> None:
        super().__init__(scope, id, bucket_name=bucket_name, protect=protect, noncurrent_days=noncurrent_days,
                         lifecycle_rule="expire-old-state-versions")
