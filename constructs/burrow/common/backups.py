"""`BackupStorage`: where an environment's Velero backups live, in its common layer so that they
outlive any cluster (restoring into a new cluster is the point of them).

A bucket of its own (a KMS key of its own, versioned, private, TLS-only, objects expiring a week
after the longest retention as a backstop to Velero's own garbage collection) that Terraform
refuses to destroy. Given its `writers` (Velero's roles), only they read and write its objects
and use its key; its `managers` (the deploy and administrator roles) administer both; every other
principal of the account is refused, whatever its IAM policies say (`burrow.common.access`).
"""

from __future__ import annotations

from collections.abc import Sequence

from cdktf_cdktf_provider_aws.kms_key import KmsKey

from burrow.common.access import deny_unless, key_policy, restricted_key_policy
from burrow.common.state import PrivateBucket
from constructs import Construct

#: Days the bucket keeps a backup's objects beyond the longest retention (Velero deletes them first).
GRACE_DAYS = 7


def backup_bucket_name(env_name: str, account_id: str) -> str:
    """Bucket names are global: the account id keeps two organisations' `qa` apart."""
    return f"burrow-{env_name}-backups-{account_id}"


class BackupStorage(Construct):
    """The backup bucket and its KMS key. `writers`: the role ARNs that back up and restore (Velero's);
    `managers`: the role ARNs that administer bucket and key. Without writers, the account's
    principals use both as their IAM policies allow. Escape hatches: `kms_key`, `storage` (the
    `PrivateBucket`)."""

    def __init__(
        self, scope: Construct, id: str, *, env_name: str, account_id: str, retention_days: int, protect: bool = True,
        writers: Sequence[str] = (), managers: Sequence[str] = (),
    ) -> None:
        super().__init__(scope, id)
        self.bucket_name = backup_bucket_name(env_name, account_id)
        arn = f"arn:aws:s3:::{self.bucket_name}"
        statements = [
            deny_unless("OnlyVeleroAndManagers", ["s3:*"], [*writers, *managers], resource=[arn, f"{arn}/*"]),
            deny_unless("OnlyVeleroReadsAndWritesBackups", ["s3:GetObject*", "s3:PutObject*", "s3:RestoreObject"],
                        writers, resource=[f"{arn}/*"]),
        ] if writers else []
        self.kms_key = KmsKey(
            self, "key", description=f"Encrypts Velero's backups in {self.bucket_name}", enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=restricted_key_policy(account_id, managers, writers) if writers else key_policy(account_id),
        )
        self.storage = PrivateBucket(
            self, "bucket", bucket_name=self.bucket_name, protect=protect, kms_key_arn=self.kms_key.arn,
            expire_days=retention_days + GRACE_DAYS, noncurrent_days=GRACE_DAYS, lifecycle_rule="expire-after-retention",
            statements=statements,
        )
