"""What every Burrow stack shares: its name, its backend."""

from __future__ import annotations

from cdktf import LocalBackend, S3Backend, TerraformStack

from burrow.config.schema import EnvironmentConfig
from constructs import Construct


class BurrowStack(TerraformStack):
    """A stack named `<env>-<layer>` whose state lives where the environment says.

    `local` state for `dev`; S3 with S3-native lock files (`use_lockfile`) elsewhere,
    one key per stack: `<env>/<layer>.tfstate`.
    """

    def __init__(self, scope: Construct, env: EnvironmentConfig, layer: str) -> None:
        super().__init__(scope, f"{env.name}-{layer}")
        self.env = env
        self.layer = layer
        if env.state.backend == "s3":
            S3Backend(self, bucket=env.state.bucket, key=f"{env.name}/{layer}.tfstate", region=env.aws.region, encrypt=True)
            self.add_override("terraform.backend.s3.use_lockfile", True)
        else:
            LocalBackend(self, path=f"terraform.{env.name}-{layer}.tfstate")
