"""`BackupStorage`: where an environment's Velero backups live, in its common layer so that they
outlive any cluster (restoring into a new cluster is the point of them).

A bucket of its own (a KMS key of its own, versioned, private, TLS-only, objects expiring a week
after the longest retention as a backstop to Velero's own garbage collection) that Terraform
refuses to destroy. Given its `writers` (Velero's roles), only they read and write its objects
and use its key; its `managers` (the deploy and administrator roles) administer both; every other
principal of the account is refused, whatever its IAM policies say (`burrow.common.access`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cdktf_cdktf_provider_aws.kms_key import KmsKey
from pydantic import Field, field_validator, model_validator

from burrow.common.access import deny_unless, key_policy, restricted_key_policy
from burrow.common.state import PrivateBucket
from burrow.names import AccountId, Arn, check_bucket_name
from burrow.props import Props, child_path, props_for
from constructs import Construct

#: Days the bucket keeps a backup's objects beyond the longest retention (Velero deletes them first).
GRACE_DAYS = 7


def backup_bucket_name(env_name: str, account_id: str) -> str:
    """Bucket names are global: the account id keeps two organisations' `qa` apart."""
    return f"burrow-{env_name}-backups-{account_id}"


class BackupStorageProps(Props):
    """Props of `BackupStorage`. Required: `env_name`, `account_id`, `retention_days`."""

    #: The environment (with its region outside the primary one, `prod-us-east-1`): the bucket is
    #: `burrow-<env_name>-backups-<account_id>`, so it must make a valid S3 bucket name.
    env_name: str
    #: The AWS account the bucket and key are in.
    account_id: AccountId
    #: The longest any backup is kept (Velero's ttl, in days): objects expire a week after it, as a
    #: backstop to Velero's own garbage collection.
    retention_days: int = Field(ge=1)
    #: Terraform refuses to destroy the bucket (backups must outlive the cluster). default: True
    protect: bool = True
    #: Role ARNs that back up and restore (Velero's): given, only they use the objects and the key.
    #: default: none (the account's principals, as their IAM policies allow)
    writers: tuple[Arn, ...] = ()
    #: Role ARNs that administer the bucket and key (deploy and administrator roles); only with
    #: `writers`, since without them nobody is shut out. default: none
    managers: tuple[Arn, ...] = ()

    @field_validator("env_name")
    @classmethod
    def _names_a_bucket(cls, env_name: str) -> str:
        bucket = backup_bucket_name(env_name, "<account_id>")
        try:
            check_bucket_name(backup_bucket_name(env_name, "0" * 12))
        except ValueError as exc:
            raise ValueError(f"it names the bucket {bucket!r}, which must be {exc}") from None
        return env_name

    @model_validator(mode="after")
    def _managers_with_writers(self) -> BackupStorageProps:
        if self.managers and not self.writers:
            raise ValueError("managers are admitted only beside writers (without writers the bucket admits the "
                             "account's principals anyway): set writers, or leave managers out")
        return self


class BackupStorage(Construct):
    """The backup bucket and its KMS key. Without `writers`, the account's principals use both as
    their IAM policies allow.

    `props` is a `BackupStorageProps` or a mapping of its fields (validated here, so a mistake names
    this construct's path). Escape hatches: `kms_key`, `storage` (the `PrivateBucket`)."""

    def __init__(self, scope: Construct, id: str, props: BackupStorageProps | Mapping[str, Any]) -> None:
        props = props_for(child_path(scope, id), BackupStorageProps, props)
        super().__init__(scope, id)
        self.props = props
        writers, managers, account_id = props.writers, props.managers, props.account_id
        self.bucket_name = backup_bucket_name(props.env_name, account_id)
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
            self, "bucket", bucket_name=self.bucket_name, protect=props.protect, kms_key_arn=self.kms_key.arn,
            expire_days=props.retention_days + GRACE_DAYS, noncurrent_days=GRACE_DAYS,
            lifecycle_rule="expire-after-retention", statements=statements,
        )
