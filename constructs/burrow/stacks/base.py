"""What every Burrow stack shares: its name, its backend."""

from __future__ import annotations

from cdktf import LocalBackend, S3Backend, TerraformStack

from burrow.common.access import state_key_alias
from burrow.config.schema import EnvironmentConfig
from burrow.policy.guardrails import Guardrails, Waiver, Wording
from burrow.stacks import TERRAFORM_VERSION
from constructs import Construct

#: An environment's stacks are built from its file: their refusals name the file's keys, not props.
ENVIRONMENT_FILE = Wording(
    settings={
        "broker": {"anti_affinity": "rabbitmq.anti_affinity", "persistence.enabled": "rabbitmq.persistence.enabled",
                   "image.digest": "a release file's `third_party` entry, or rabbitmq.image.digest"},
        "chart": {"digests": "a release file's `third_party` entry for it, or addons.image_digests.<chart>"},
        "nodepool": {"limits": "cluster.eks.karpenter.limits",
                     "disruption_budget": "cluster.eks.karpenter.disruption_budget",
                     "capacity_types": "cluster.eks.karpenter.capacity_types"},
    },
    advice="Fix the configuration, or waive the rule for that construct in guardrails.waivers "
           "(rule, path: <layer>/<construct path after the stack's name>, reason).",
)


def stack_waivers(env: EnvironmentConfig, layer: str, stack_name: str) -> list[Waiver]:
    """The environment's waivers of constructs in its `layer` stack named `stack_name` (one per region)."""
    found = []
    for waiver in env.guardrails.waivers:
        waived_layer, path = waiver.path.split("/", 1)
        if waived_layer == layer:
            found.append(Waiver(rule=waiver.rule, path=f"{stack_name}/{path}", reason=waiver.reason))
    return found


def state_access(env: EnvironmentConfig, session_name: str) -> dict:
    """How Terraform reaches an environment's state bucket: only with credentials of its account
    (`allowed_account_ids`), through its role when it has one (`assume_role`). For the S3 backend
    and for a `terraform_remote_state` reading that bucket alike."""
    access: dict = {}
    if env.aws.account_id:
        access["allowed_account_ids"] = [env.aws.account_id]
    if env.aws.role_arn:  # the state is read and written with the environment's role too
        access["assume_role"] = {"role_arn": env.aws.role_arn, "session_name": session_name,
                                 **({"external_id": env.aws.external_id} if env.aws.external_id else {})}
    return access


class BurrowStack(TerraformStack):
    """A stack named `<env>-<layer>` whose state lives where the environment says.

    `local` state for `dev` (or when `local_state` is asked for: a bootstrap, an emulator
    rehearsal); S3 with S3-native lock files (`use_lockfile`) elsewhere, one key per stack:
    `<env>/<layer>.tfstate`. A region other than the environment's primary names its stacks
    `<env>-<region>-<layer>` and keeps their state at `<env>/<region>/<layer>.tfstate`, in the one
    state bucket (in the primary region). Local state files sit in their stack's folder under a path every
    sibling stack resolves the same way, so cross-stack references work with local state too.
    """

    def __init__(
        self, scope: Construct, env: EnvironmentConfig, layer: str, *, local_state: bool = False,
        name: str | None = None, state_key: str | None = None,
    ) -> None:
        """`name` and `state_key` replace `<env>-<layer>` and `<env>/<layer>.tfstate` (previews)."""
        name = name or f"{env.stack_prefix}-{layer}"
        super().__init__(scope, name)
        self.env = env
        self.layer = layer
        self.guardrails = Guardrails.configure(self, env.tier, stack_waivers(env, layer, name), wording=ENVIRONMENT_FILE)
        self.add_override("terraform.required_version", TERRAFORM_VERSION)
        if local_state or env.state.backend == "local":
            LocalBackend(self, path=f"../{name}/terraform.{name}.tfstate")
        else:
            S3Backend(self, bucket=env.state.bucket, key=state_key or f"{env.state_prefix}/{layer}.tfstate",
                      region=env.primary_region, encrypt=True)
            self.add_override("terraform.backend.s3.use_lockfile", True)
            if env.aws.account_id:  # state under the bucket's own key (`StateStorage`), not S3's
                self.add_override("terraform.backend.s3.kms_key_id", f"arn:aws:kms:{env.primary_region}:"
                                  f"{env.aws.account_id}:{state_key_alias(env.state.bucket)}")
            for key, value in state_access(env, f"burrow-{env.name}").items():
                self.add_override(f"terraform.backend.s3.{key}", value)
