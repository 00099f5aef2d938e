"""`GeneratedCredentials`: credentials Burrow generates, held in AWS Secrets Manager and never in
Terraform state or plan output.

Each field's value comes from an ephemeral resource (`aws_secretsmanager_random_password`:
Secrets Manager's own generator, opened during plan and apply and never stored) and is written
through the write-only argument `secret_string_wo` (Terraform 1.11), which Terraform keeps
neither in state nor in plans. `secret_string_wo_version` is fixed, so the value is generated
once; raise `generation` to rotate (the next apply writes a new value). cdktf 0.21 has no typed
API for ephemeral resources, so they are added to the stack as raw `ephemeral` blocks.

The External Secrets Operator in the cluster reads them with an IRSA role that may read only
these secrets and decrypt only with their key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from cdktf import TerraformStack
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.secretsmanager_secret import SecretsmanagerSecret, SecretsmanagerSecretReplica
from cdktf_cdktf_provider_aws.secretsmanager_secret_version import SecretsmanagerSecretVersion

from burrow.addons.external_secrets import SERVICE_ACCOUNT_SUBJECT
from burrow.cluster.eks import EksCluster, irsa_trust, key_policy
from burrow.spi import SecretsAccess
from constructs import Construct

#: What Burrow generates: secret key -> {JSON field: length}. Letters and digits only (URI-safe).
GENERATED = {
    "rabbitmq": {"password": 32, "erlang_cookie": 64},
    "grafana": {"admin_password": 32},
}
#: The public producer's bearer token (`ingress.authentication: token`): one for the environment.
PUBLISH_TOKEN = {"producer": {"publish_token": 48}}


def peer_statements(prefix: str, account_id: str, regions: tuple[str, ...]) -> list[dict]:
    """Reading the broker secret `<prefix>/rabbitmq` of other regions, and decrypting it there
    through Secrets Manager only."""
    if not regions:
        return []
    return [
        {"Sid": "ReadPeerBrokerSecrets", "Effect": "Allow",
         "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
         "Resource": [f"arn:aws:secretsmanager:{region}:{account_id}:secret:{prefix}/rabbitmq-*" for region in regions]},
        {"Sid": "DecryptPeerBrokerSecrets", "Effect": "Allow", "Action": "kms:Decrypt",
         "Resource": [f"arn:aws:kms:{region}:{account_id}:key/*" for region in regions],
         "Condition": {"StringEquals": {"kms:ViaService": [f"secretsmanager.{region}.amazonaws.com" for region in regions]}}},
    ]


def replica_statements(prefix: str, account_id: str, region: str, keys: Sequence[str]) -> list[dict]:
    """Reading the replicas (in this region) of secrets another region's credentials generate."""
    if not keys:
        return []
    return [{"Sid": "ReadReplicatedSecrets", "Effect": "Allow",
             "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
             "Resource": [f"arn:aws:secretsmanager:{region}:{account_id}:secret:{prefix}/{key}-*" for key in keys]}]


class GeneratedCredentials(Construct):
    """One Secrets Manager secret per entry of `secrets`, encrypted with a KMS key of its own.

    Escape hatches: `kms_key`, `secrets` (by key), `reader_role`. `access` tells the cluster's
    add-ons where to read them.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        prefix: str,
        account_id: str,
        region: str,
        cluster: EksCluster,
        secrets: Mapping[str, Mapping[str, int]] = GENERATED,
        recovery_days: int = 30,
        generation: int = 1,
        role_name: str | None = None,
        peer_regions: tuple[str, ...] = (),
        replicas: Mapping[str, Sequence[str]] | None = None,
        replicated: Sequence[str] = (),
    ) -> None:
        """`role_name`: the reader role's name (default: the prefix with dashes); `peer_regions`:
        regions whose secret `<prefix>/rabbitmq` the reader may read too (federation upstreams);
        `replicas`: secret key -> regions Secrets Manager keeps a replica of it in (one value for
        the whole environment); `replicated`: keys whose secret is such a replica in this region
        (made by another region's credentials, only read here)."""
        super().__init__(scope, id)
        stack = TerraformStack.of(self)
        self.kms_key = KmsKey(
            self,
            "key",
            description=f"Encrypts the credentials under {prefix}/ in Secrets Manager",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=key_policy(account_id),
        )
        self.secrets: dict[str, SecretsmanagerSecret] = {}
        for key, fields in secrets.items():
            secret = SecretsmanagerSecret(
                self,
                key,
                name=f"{prefix}/{key}",
                description=f"Generated by Burrow; read in the cluster by External Secrets ({key})",
                kms_key_id=self.kms_key.arn,
                recovery_window_in_days=recovery_days,
                # a replica is encrypted with its region's Secrets Manager key
                replica=[SecretsmanagerSecretReplica(region=r) for r in (replicas or {}).get(key, ())] or None,
            )
            values = []
            for field, length in fields.items():
                name = f"{id}_{key}_{field}".replace("-", "_")
                stack.add_override(
                    f"ephemeral.aws_secretsmanager_random_password.{name}",
                    {"password_length": length, "exclude_punctuation": True, "include_space": False},
                )
                values.append(f'"{field}" = ephemeral.aws_secretsmanager_random_password.{name}.random_password')
            SecretsmanagerSecretVersion(
                self,
                f"{key}-value",
                secret_id=secret.id,
                secret_string_wo="${jsonencode({" + ", ".join(values) + "})}",
                secret_string_wo_version=generation,
            )
            self.secrets[key] = secret
        trust = irsa_trust(self, "reader-trust", cluster.oidc_provider.arn, cluster.issuer,
                           SERVICE_ACCOUNT_SUBJECT)
        self.reader_role = IamRole(self, "reader", name=role_name or f"{prefix.replace('/', '-')}-secrets-reader",
                                   assume_role_policy=trust.json)
        IamRolePolicy(
            self,
            "reader-policy",
            role=self.reader_role.name,
            policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "ReadTheseSecrets",
                            "Effect": "Allow",
                            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                            "Resource": [s.arn for s in self.secrets.values()],
                        },
                        {"Sid": "DecryptThem", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": self.kms_key.arn},
                        *peer_statements(prefix, account_id, peer_regions),
                        *replica_statements(prefix, account_id, region, replicated),
                    ],
                }
            ),
        )
        self.access = SecretsAccess(role_arn=self.reader_role.arn, region=region, prefix=prefix)
