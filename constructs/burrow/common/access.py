"""Key and bucket policies: a key policy that delegates to IAM (`key_policy`), and policies that admit
named roles only.

An account's IAM policies decide what its principals may do unless a resource policy says
otherwise; these statements say otherwise. Every bucket or key built with them refuses each
principal whose ARN (`aws:PrincipalArn`: a role's own ARN, whatever the session) is not listed,
whatever its IAM policies grant. Roles are named in conditions, not as principals, because a
bucket or key policy that names a role which does not exist yet is refused by S3 and KMS, and the
roles that use these buckets (Velero's, in the cluster stack) come after them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

#: What a key's managers may do: administer it, never encrypt or decrypt with it.
KEY_ADMINISTRATION = [
    "kms:Create*",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
]
#: What a key's users may do: what S3 asks for on their behalf.
KEY_USE = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*", "kms:DescribeKey"]


def state_key_alias(bucket: str) -> str:
    """The alias of a state bucket's key: the S3 backend names it (`kms_key_id`), since with
    `encrypt` and no key of its own the backend asks S3 for `AES256`, not the bucket's default."""
    return f"alias/{bucket}"


def role_arns(account_id: str, names: Sequence[str]) -> list[str]:
    """The ARNs of roles of `account_id` by name (a name may carry a path: `ci/burrow-deploy`)."""
    return [f"arn:aws:iam::{account_id}:role/{name}" for name in names]


def root(account_id: str) -> str:
    """The account's root user: the break-glass manager of every key (a key nobody may administer
    can only be recovered by AWS Support)."""
    return f"arn:aws:iam::{account_id}:root"


def deny_unless(
    sid: str,
    actions: Sequence[str],
    principals: Sequence[str],
    *,
    resource: Sequence[str] = (),
    not_resource: Sequence[str] = (),
) -> dict:
    """Deny `actions` (on `resource`, or on everything but `not_resource`) to every principal but `principals`."""
    where = {"NotResource": list(not_resource)} if not_resource else {"Resource": list(resource)}
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": list(actions),
        **where,
        "Condition": {"ArnNotLike": {"aws:PrincipalArn": sorted(set(principals))}},
    }


def deny_to(sid: str, actions: Sequence[str], principals: Sequence[str], *, not_resource: Sequence[str]) -> dict:
    """Deny `principals` `actions` on everything but `not_resource`."""
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": list(actions),
        "NotResource": list(not_resource),
        "Condition": {"ArnLike": {"aws:PrincipalArn": sorted(set(principals))}},
    }


def key_policy(account_id: str, *extra: dict) -> str:
    """The account administers and uses the key through IAM (EKS's cluster role gets use via IAM);
    `extra` statements grant services (CloudWatch Logs, say) use of it."""
    statement = {
        "Sid": "AccountAdministersThroughIam",
        "Effect": "Allow",
        "Principal": {"AWS": root(account_id)},
        "Action": "kms:*",
        "Resource": "*",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement, *extra]})


def restricted_key_policy(account_id: str, managers: Sequence[str], users: Sequence[str]) -> str:
    """A key policy that does not delegate to IAM: `managers` (and the root user) administer the key,
    `users` encrypt and decrypt with it, and nobody else may do either."""
    principal = {"AWS": root(account_id)}
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ManagersAdminister",
                    "Effect": "Allow",
                    "Principal": principal,
                    "Action": KEY_ADMINISTRATION,
                    "Resource": "*",
                    "Condition": {"ArnLike": {"aws:PrincipalArn": sorted({*managers, root(account_id)})}},
                },
                {
                    "Sid": "UsersUseIt",
                    "Effect": "Allow",
                    "Principal": principal,
                    "Action": KEY_USE,
                    "Resource": "*",
                    "Condition": {"ArnLike": {"aws:PrincipalArn": sorted(set(users))}},
                },
            ],
        }
    )
