"""Settings of the cluster add-ons: Karpenter's node pool, Flux's Git source, monitoring, Velero's
backups, and the StorageClass the storage add-on creates. Pydantic only (the environment schema builds
its sections from them before cdktf loads)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from burrow.monitoring.settings import AlertReceiver, AlertThresholds
from burrow.settings import DnsLabel, Model, Quantity, Resources, distinct

#: The StorageClass `burrow.addons.storage` creates on EKS (EBS gp3, the cluster's default).
GP3 = "gp3"

#: vCPUs of one instance of each size Karpenter may choose (the same across the c, m and r families).
INSTANCE_SIZE_VCPUS = {
    "large": 2,
    "xlarge": 4,
    "2xlarge": 8,
    "4xlarge": 16,
    "8xlarge": 32,
    "12xlarge": 48,
    "16xlarge": 64,
}
#: GiB of memory per vCPU in each instance category Burrow offers Karpenter.
CATEGORY_GIB_PER_VCPU = {"c": 2, "m": 4, "r": 8}
InstanceSize = Literal["large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"]
Duration = Annotated[str, StringConstraints(pattern=r"^[0-9]+[smh]$")]


class NodePoolLimits(Model):
    """The most a NodePool may provision in total: Karpenter stops adding nodes at either bound."""

    cpu: int = Field(ge=1, le=100000, description="vCPUs over all of the pool's nodes")
    memory_gib: int = Field(ge=1, le=1000000, description="GiB of memory over all of the pool's nodes")


class KarpenterConfig(Model):
    """Node autoscaling with Karpenter: the environment's workloads (RabbitMQ, producer, consumer) run
    on nodes Karpenter provisions from one NodePool; the managed node groups keep the system pods.

    Instance types are chosen by category (c: 2 GiB per vCPU, m: 4, r: 8), size and generation, so
    the smallest node of the pool is known at synth and the limits are checked against it.
    """

    enabled: bool = False
    #: `spot` and/or `on-demand`. Production allows only on-demand unless the guardrail
    #: `nodepool-on-demand` is waived. default: on-demand
    capacity_types: list[Literal["spot", "on-demand"]] = Field(default_factory=lambda: ["on-demand"])
    instance_categories: list[Literal["c", "m", "r"]] = Field(default_factory=lambda: ["c", "m", "r"])
    instance_sizes: list[InstanceSize] = Field(default_factory=lambda: ["large", "xlarge", "2xlarge"])
    #: The oldest instance generation allowed (5: m5, c5, r5 and newer).
    min_generation: int = Field(default=5, ge=3, le=9)
    architectures: list[Literal["amd64", "arm64"]] = Field(default_factory=lambda: ["amd64"])
    #: Attach `AmazonSSMManagedInstanceCore` to the nodes' role, so Session Manager opens shells on
    #: them (as root, on the nodes that run the broker and the producer). default: off
    session_manager: bool = False
    #: Total CPU and memory the pool may hold; required in production. default: none (unbounded)
    limits: NodePoolLimits | None = None
    #: `WhenEmptyOrUnderutilized` packs pods onto fewer nodes; `WhenEmpty` only removes idle nodes.
    consolidation_policy: Literal["WhenEmpty", "WhenEmptyOrUnderutilized"] = "WhenEmptyOrUnderutilized"
    consolidate_after: Duration = "1m"
    #: How many of the pool's nodes voluntary disruption (consolidation, expiry, drift) may take at
    #: once: a count or a percentage; required in production. default: 10%
    disruption_budget: Annotated[str, StringConstraints(pattern=r"^([0-9]+|[0-9]+%)$")] | None = "10%"
    #: Nodes are replaced after this long (fresh AMIs and patches); `Never` keeps them.
    expire_after: Duration | Literal["Never"] = "720h"
    #: The EC2NodeClass's AMI alias (`al2023@latest` follows EKS's AMI releases; pin `al2023@v…`).
    ami_alias: Annotated[str, StringConstraints(pattern=r"^(al2023|bottlerocket)@(latest|v[0-9]+(\.[0-9]+)*)$")] = (
        "al2023@latest"
    )
    volume_size_gib: int = Field(default=50, ge=20, le=2000)

    @field_validator("capacity_types", "instance_categories", "instance_sizes", "architectures")
    @classmethod
    def _non_empty(cls, values: list, info) -> list:
        if not values:
            raise ValueError(f"needs at least one entry ({info.field_name}: the nodes Karpenter may choose from)")
        return distinct(values, "value")

    @property
    def smallest_node(self) -> tuple[int, int]:
        """(vCPUs, GiB) of the smallest instance the pool may choose."""
        vcpus = min(INSTANCE_SIZE_VCPUS[size] for size in self.instance_sizes)
        return vcpus, vcpus * min(CATEGORY_GIB_PER_VCPU[c] for c in self.instance_categories)


GIT_URL = re.compile(
    r"^(https://[A-Za-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9._~/-]+"
    r"|ssh://[A-Za-z0-9._-]+@[A-Za-z0-9.-]+(:[0-9]+)?/[A-Za-z0-9._~/-]+"
    r"|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._~/-]+)$"
)
PGP_PUBLIC_BEGIN = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
PGP_PUBLIC_END = "-----END PGP PUBLIC KEY BLOCK-----"


class GitOpsConfig(Model):
    """Where Flux reads an environment's app layer from (`delivery: gitops`)."""

    #: The Git repository: https://host/org/repo(.git), ssh://git@host/org/repo or git@host:org/repo.
    repository: str
    branch: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._/-]{1,100}$")] = "main"
    #: Folder in the repository that holds `make gitops-export`'s tree. default: clusters/<env>
    path: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")] | None = None
    interval: Annotated[str, StringConstraints(pattern=r"^[0-9]+[smh]$")] = "5m"
    #: A Secret in the app namespace with the repository's credentials (deploy key, token); none for public.
    secret_name: DnsLabel | None = None
    #: ASCII-armored OpenPGP public keys (`gpg --armor --export <key id>`) of whoever signs the
    #: repository's commits: Flux applies a commit only when its signature verifies against one of
    #: them. Required with `delivery: gitops`.
    signing_keys: list[str] = Field(default_factory=list)

    @field_validator("signing_keys")
    @classmethod
    def _public_keys(cls, values: list[str]) -> list[str]:
        for value in values:
            text = value.strip()
            if not (text.startswith(PGP_PUBLIC_BEGIN) and text.endswith(PGP_PUBLIC_END)):
                raise ValueError(
                    f"not an ASCII-armored OpenPGP public key: each entry starts with {PGP_PUBLIC_BEGIN} "
                    f"and ends with {PGP_PUBLIC_END} (a private key never goes here)"
                )
        return values

    @field_validator("repository")
    @classmethod
    def _git_url(cls, value: str) -> str:
        if not GIT_URL.match(value):
            raise ValueError(
                "not a Git URL: use https://host/org/repo.git, ssh://git@host/org/repo.git or git@host:org/repo.git"
            )
        return value


class LokiConfig(Model):
    enabled: bool = False
    retention: str = Field(default="168h", pattern=r"^[0-9]+[hd]$")
    storage_size: Quantity = "20Gi"


class MonitoringConfig(Model):
    """kube-prometheus-stack (and optionally Loki) in the add-ons stack; ServiceMonitors,
    PrometheusRules and a Grafana dashboard next to the workloads."""

    enabled: bool = False
    namespace: DnsLabel = "monitoring"
    retention: str = Field(default="15d", pattern=r"^[0-9]+[hdw]$")
    storage_size: Quantity = "50Gi"
    storage_class: str | None = None
    prometheus_resources: Resources | None = None
    loki: LokiConfig = LokiConfig()
    alerts: AlertThresholds = AlertThresholds()
    receiver: AlertReceiver | None = None


_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_CRON_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def cron_problem(expression: str) -> str | None:
    """Why `expression` is not a cron schedule Velero accepts (five fields, or a descriptor), else None."""
    if expression in _CRON_DESCRIPTORS:
        return None
    fields = expression.split()
    if len(fields) != len(_CRON_FIELDS):
        return f"has {len(fields)} fields; a schedule has 5 (minute hour day-of-month month day-of-week) or is one of {', '.join(_CRON_DESCRIPTORS)}"
    for text, (name, low, high) in zip(fields, _CRON_FIELDS, strict=True):
        for part in text.split(","):
            base, _, step = part.partition("/")
            if step and not (step.isdigit() and int(step) > 0):
                return f"{name} field {text!r}: the step after '/' must be a positive number"
            if base == "*":
                continue
            bounds = base.split("-")
            if len(bounds) > 2 or not all(b.isdigit() for b in bounds):
                return f"{name} field {text!r}: use numbers, ranges (a-b), lists (a,b), steps (*/n) or *"
            numbers = [int(b) for b in bounds]
            if any(not low <= n <= high for n in numbers) or numbers != sorted(numbers):
                return f"{name} field {text!r}: values must lie between {low} and {high}, ranges ascending"
    return None


class BackupScheduleConfig(Model):
    """One Velero Schedule of the app namespace, its volumes included."""

    #: Cron expression in UTC, e.g. "0 3 * * *" (daily at 03:00), or a descriptor such as @daily.
    cron: str
    #: How long each backup is kept (Velero's ttl); the bucket's lifecycle follows the longest.
    retention_days: int = Field(ge=1, le=3650)
    #: EBS snapshots of the namespace's volumes (RabbitMQ's messages) with every backup.
    snapshot_volumes: bool = True
    #: Alert when no backup of this schedule succeeded for this long. default: 26 hours (daily + 2 h)
    alert_after_hours: int = Field(default=26, ge=1, le=24 * 90)

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        problem = cron_problem(value)
        if problem:
            raise ValueError(f"not a valid cron expression: {problem}")
        return value


class BackupsConfig(Model):
    """Velero backups of the app namespace to an S3 bucket of the environment (EKS environments)."""

    enabled: bool = False
    schedules: dict[DnsLabel, BackupScheduleConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _scheduled(self) -> BackupsConfig:
        if self.enabled and not self.schedules:
            raise ValueError("backups are enabled but no schedule is configured: add one under backups.schedules")
        return self

    @property
    def longest_retention_days(self) -> int:
        return max((s.retention_days for s in self.schedules.values()), default=1)
