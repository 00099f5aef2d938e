"""`GeneratedCredentials`: credentials Burrow generates, held in AWS Secrets Manager and never in
Terraform state or plan output.

Each field's value comes from an ephemeral resource (`aws_secretsmanager_random_password`:
Secrets Manager's own generator, opened during plan and apply and never stored) and is written
through the write-only argument `secret_string_wo` (Terraform 1.11), which Terraform keeps
neither in state nor in plans. `secret_string_wo_version` is fixed, so the value is generated
once; raise `generation` to rotate (the next apply writes a new value). cdktf 0.21 has no typed
API for ephemeral resources, so they are added to the stack as raw `ephemeral` blocks.

A secret whose fields are empty is a shell: Terraform creates it (name, key, replicas, the tag
External Secrets' PushSecret requires before it writes to an existing secret) and never a value;
the cluster writes it (the federation CA, `burrow.addons.cert_manager`).

Each consumer (a namespace whose ExternalSecrets read them) gets a reader role of its own, which
may read only that consumer's secrets and decrypt only through Secrets Manager; External Secrets
assumes it through a ServiceAccount of the consumer's in `external-secrets`
(`burrow.addons.external_secrets`). A consumer that pushes a shell's value (`writers`) may also
write that one secret, and encrypt only through Secrets Manager. The operator itself holds no AWS role.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from cdktf import TerraformProvider, TerraformStack
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.kms_replica_key import KmsReplicaKey
from cdktf_cdktf_provider_aws.secretsmanager_secret import SecretsmanagerSecret, SecretsmanagerSecretReplica
from cdktf_cdktf_provider_aws.secretsmanager_secret_version import SecretsmanagerSecretVersion

from burrow.addons.cert_manager import CA_SECRET_KEY
from burrow.addons.external_secrets import reader_subject
from burrow.app.broker_users import ROLES, secret_key
from burrow.cluster.eks import EksCluster, irsa_trust
from burrow.common.access import key_policy
from burrow.names import fitted
from burrow.spi import SecretsAccess
from constructs import Construct

#: What Burrow generates: secret key -> {JSON field: length}. Letters and digits only (URI-safe).
#: `rabbitmq`: the broker administrator's password and the Erlang cookie; `broker-<role>`: the
#: password of each role's broker user, a secret of its own so that each reader gets only its own.
GENERATED = {
    "rabbitmq": {"password": 32, "erlang_cookie": 64},
    **{secret_key(role): {"password": 32} for role in ROLES},
    "grafana": {"admin_password": 32},
}
#: The public producer's bearer tokens (`ingress.authentication: token`): one secret for the
#: environment. Both are accepted; `make rotate-token` moves the current one to `previous` and
#: writes a new current one (the first `previous` is random, known to nobody).
PUBLISH_TOKEN = {"producer": {"publish_token": 48, "previous_publish_token": 48}}
#: The password of the user federation links log in with (`federation.enabled`): one for the
#: environment, so every region's broker knows it before any other region exists.
FEDERATION = {"federation": {"password": 32}}
#: The environment's federation CA (`federation.enabled`): a shell, written by the signing region's
#: cluster (cert-manager makes the CA, a PushSecret stores it) and replicated to the other regions.
FEDERATION_CA = {CA_SECRET_KEY: {}}


READ = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
ENCRYPT = ["kms:GenerateDataKey", "kms:Encrypt"]
#: What External Secrets' PushSecret (chart 2.8.0) calls on an existing secret besides READ: the
#: new value, and removing any resource policy (it does so on every push that names none).
WRITE = ["secretsmanager:PutSecretValue", "secretsmanager:DeleteResourcePolicy"]
#: The tag without which a PushSecret refuses to write to a secret it did not create.
PUSHED_BY = {"managed-by": "external-secrets"}


def replica_alias(prefix: str) -> str:
    """The alias, in each region, of the key replica that encrypts the replicated credentials."""
    return f"alias/{prefix}/replicated"


def through_secrets_manager(region: str) -> dict:
    """The condition that limits a KMS permission to calls Secrets Manager makes in `region`."""
    return {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}


def replica_statements(prefix: str, account_id: str, region: str, keys: Sequence[str]) -> list[dict]:
    """Reading the replicas (in this region) of secrets another region's credentials generate, and
    decrypting them with the key replica that carries `replica_alias` (the primary's stack made it)."""
    if not keys:
        return []
    condition = {**through_secrets_manager(region),
                 "ForAnyValue:StringEquals": {"kms:ResourceAliases": [replica_alias(prefix)]}}
    return [{"Sid": "ReadReplicatedSecrets", "Effect": "Allow", "Action": READ,
             "Resource": [f"arn:aws:secretsmanager:{region}:{account_id}:secret:{prefix}/{key}-*" for key in keys]},
            {"Sid": "DecryptReplicatedSecretsThroughSecretsManager", "Effect": "Allow", "Action": "kms:Decrypt",
             "Resource": f"arn:aws:kms:{region}:{account_id}:key/*", "Condition": condition}]


class GeneratedCredentials(Construct):
    """One Secrets Manager secret per entry of `secrets`, encrypted with a KMS key of its own.

    Escape hatches: `kms_key`, `replicated_key`, `secrets` (by key), `key_of` (by key),
    `reader_roles` (by consumer namespace).
    `access` tells the cluster's add-ons where to read them and which role each consumer uses.
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
        readers: Mapping[str, Sequence[str]],
        writers: Mapping[str, Sequence[str]] | None = None,
        role_prefix: str | None = None,
        replicas: Mapping[str, Sequence[str]] | None = None,
        replicated: Sequence[str] = (),
        providers: Mapping[str, TerraformProvider] | None = None,
    ) -> None:
        """`readers`: consumer namespace -> the secret keys it reads (each gets a reader role
        `<role_prefix>-<namespace>`, default prefix: the prefix with dashes); `writers`: consumer
        namespace -> the shells (keys of `secrets` without fields) it writes; `replicas`: secret
        key -> regions Secrets Manager keeps a replica of it in (one value for the whole
        environment); `replicated`: keys whose secret is such a replica in this region (made by
        another region's credentials, only read here); `providers`: region -> an AWS provider there,
        for every region of `replicas` (each replica is encrypted with a replica, in its region, of
        the multi-Region key `replicated_key`, aliased `replica_alias(prefix)`)."""
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
        replica_keys = self._replica_keys(prefix, account_id, replicas or {}, providers or {})
        self.secrets: dict[str, SecretsmanagerSecret] = {}
        self.key_of: dict[str, KmsKey] = {}
        for key, fields in secrets.items():
            regions = (replicas or {}).get(key, ())
            self.key_of[key] = self.replicated_key if regions else self.kms_key
            secret = SecretsmanagerSecret(
                self,
                key,
                name=f"{prefix}/{key}",
                description=f"Generated by Burrow; read in the cluster by External Secrets ({key})",
                kms_key_id=self.key_of[key].arn,
                recovery_window_in_days=recovery_days,
                tags=None if fields else dict(PUSHED_BY),
                # a replica is encrypted with the customer-managed key's replica in its region
                replica=[SecretsmanagerSecretReplica(region=r, kms_key_id=replica_keys[r].arn) for r in regions] or None,
            )
            values = []
            for field, length in fields.items():
                name = f"{id}_{key}_{field}".replace("-", "_")
                stack.add_override(
                    f"ephemeral.aws_secretsmanager_random_password.{name}",
                    {"password_length": length, "exclude_punctuation": True, "include_space": False},
                )
                values.append(f'"{field}" = ephemeral.aws_secretsmanager_random_password.{name}.random_password')
            self.secrets[key] = secret
            if not fields:
                continue  # a shell: its value is written in the cluster, never by Terraform
            SecretsmanagerSecretVersion(
                self,
                f"{key}-value",
                secret_id=secret.id,
                secret_string_wo="${jsonencode({" + ", ".join(values) + "})}",
                secret_string_wo_version=generation,
            )
        available = {*self.secrets, *replicated}
        for namespace, keys in readers.items():
            unknown = sorted(set(keys) - available)
            if unknown:
                raise ValueError(f"{self.node.path}: readers[{namespace!r}] names {unknown}, which this region "
                                 f"neither generates nor replicates (allowed: {sorted(available)})")
        shells = sorted(key for key, fields in secrets.items() if not fields)
        for namespace, keys in (writers or {}).items():
            wrong = sorted(set(keys) - set(shells) | ({namespace} - set(readers)))
            if wrong:
                raise ValueError(f"{self.node.path}: writers[{namespace!r}] names {wrong}: a writer is a consumer of "
                                 f"readers and writes only shells of this region (shells: {shells})")
        base = role_prefix or prefix.replace("/", "-")
        self.reader_roles: dict[str, IamRole] = {}
        for namespace, keys in readers.items():
            self.reader_roles[namespace] = self._reader(
                namespace, fitted(base, f"-{namespace}"), cluster, [k for k in keys if k in self.secrets],
                [k for k in keys if k not in self.secrets], prefix, account_id, region,
                writes=tuple((writers or {}).get(namespace, ())), replicas=replicas or {})
        self.access = SecretsAccess(readers={ns: role.arn for ns, role in self.reader_roles.items()},
                                    region=region, prefix=prefix)

    def _replica_keys(self, prefix: str, account_id: str, replicas: Mapping[str, Sequence[str]],
                      providers: Mapping[str, TerraformProvider]) -> dict[str, KmsReplicaKey]:
        """The multi-Region key of the replicated secrets (`replicated_key`, None without replicas)
        and its replica in each region a secret is replicated to, aliased so that region's
        readers can name it without a reference to this stack."""
        regions = sorted({r for rs in replicas.values() for r in rs})
        self.replicated_key: KmsKey | None = None
        if not regions:
            return {}
        missing = [r for r in regions if r not in providers]
        if missing:
            raise ValueError(f"{self.node.path}: providers has no AWS provider for replica regions {missing}")
        self.replicated_key = KmsKey(
            self, "replicated-key", multi_region=True, enable_key_rotation=True, deletion_window_in_days=30,
            description=f"Encrypts the credentials under {prefix}/ that Secrets Manager replicates to other regions",
            policy=key_policy(account_id))
        keys = {}
        for region in regions:
            keys[region] = KmsReplicaKey(
                self, f"replicated-key-{region}", provider=providers[region], primary_key_arn=self.replicated_key.arn,
                deletion_window_in_days=30, policy=key_policy(account_id),
                description=f"Replica in {region} of the key of the replicated credentials under {prefix}/")
            KmsAlias(self, f"replicated-key-{region}-alias", provider=providers[region], name=replica_alias(prefix),
                     target_key_id=keys[region].key_id)
        return keys

    def _reader(self, namespace: str, name: str, cluster: EksCluster, own: Sequence[str], replicated: Sequence[str],
                prefix: str, account_id: str, region: str, writes: Sequence[str] = (),
                replicas: Mapping[str, Sequence[str]] | None = None) -> IamRole:
        """The role External Secrets assumes for `namespace`: read `own` (generated here) and
        `replicated` secrets, decrypt with the key only through Secrets Manager; write `writes`
        (shells of `own`) and encrypt for them only through Secrets Manager."""
        trust = irsa_trust(self, f"reader-{namespace}-trust", cluster.oidc_provider.arn, cluster.issuer,
                           reader_subject(namespace))
        role = IamRole(self, f"reader-{namespace}", name=name, assume_role_policy=trust.json)
        statements = [*replica_statements(prefix, account_id, region, replicated)]
        if own:
            statements = [
                {"Sid": "ReadTheseSecrets", "Effect": "Allow", "Action": READ,
                 "Resource": [self.secrets[key].arn for key in own]},
                {"Sid": "DecryptThemThroughSecretsManager", "Effect": "Allow", "Action": "kms:Decrypt",
                 "Resource": sorted({self.key_of[key].arn for key in own}), "Condition": through_secrets_manager(region)},
                *statements,
            ]
        if writes:
            regions = sorted({r for key in writes for r in (replicas or {}).get(key, ())})
            statements += self._write_statements(writes, prefix, account_id, region, regions)
        IamRolePolicy(self, f"reader-{namespace}-policy", role=role.name,
                      policy=json.dumps({"Version": "2012-10-17", "Statement": statements}))
        return role

    def _write_statements(self, keys: Sequence[str], prefix: str, account_id: str, region: str,
                          replica_regions: Sequence[str]) -> list[dict]:
        """Writing the shells `keys` (a new value, no resource policy) and encrypting their value
        with their key through Secrets Manager: here, and in each region Secrets Manager replicates
        them to (it re-encrypts there with the key's replica, as the writer)."""
        keys_used = sorted({self.key_of[key].arn for key in keys})
        statements = [
            {"Sid": "WriteTheseSecrets", "Effect": "Allow", "Action": WRITE,
             "Resource": [self.secrets[key].arn for key in keys]},
            {"Sid": "EncryptThemThroughSecretsManager", "Effect": "Allow", "Action": ENCRYPT,
             "Resource": keys_used, "Condition": through_secrets_manager(region)},
        ]
        regions = list(replica_regions)
        if regions:
            statements.append({
                "Sid": "EncryptTheirReplicasThroughSecretsManager", "Effect": "Allow", "Action": ENCRYPT,
                "Resource": [f"arn:aws:kms:{r}:{account_id}:key/*" for r in regions],
                "Condition": {"StringEquals": {"kms:ViaService": [f"secretsmanager.{r}.amazonaws.com" for r in regions]},
                              "ForAnyValue:StringEquals": {"kms:ResourceAliases": [replica_alias(prefix)]}},
            })
        return statements
