"""The typed schema of an environment.

`environments/default.yaml` deep-merged with `environments/<name>.yaml` must
validate against `EnvironmentConfig`. Every model forbids unknown keys, so a
typo is an error instead of a silently ignored setting. Code reads these
models, never raw dicts.

A section that a construct takes as its settings (`rabbitmq`, `network`, `monitoring`, ...) is the
library's type, imported from `burrow.settings` or the `settings` module beside that construct, and
importable from here as before; this module adds what only Burrow's environments have.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from burrow.addons.settings import (  # noqa: F401 - importable here as before
    _CRON_DESCRIPTORS,
    _CRON_FIELDS,
    CATEGORY_GIB_PER_VCPU,
    GIT_URL,
    INSTANCE_SIZE_VCPUS,
    PGP_PUBLIC_BEGIN,
    PGP_PUBLIC_END,
    BackupScheduleConfig,
    BackupsConfig,
    Duration,
    GitOpsConfig,
    InstanceSize,
    KarpenterConfig,
    LokiConfig,
    MonitoringConfig,
    NodePoolLimits,
    cron_problem,
)
from burrow.app.settings import (  # noqa: F401 - importable here as before
    CONSUMER_AUTOSCALING,
    PRODUCER_AUTOSCALING,
    AutoscalingConfig,
    CpuAutoscalingConfig,
    Hostname,
    IngressConfig,
    MessagingConfig,
    NamespaceQuota,
    PersistenceConfig,
    QueueAutoscalingConfig,
    RabbitMqConfig,
    WorkerScaling,
)
from burrow.cluster.settings import (  # noqa: F401 - importable here as before
    MAX_PUBLIC_ACCESS_CIDRS,
    ApiAccessConfig,
    EksClusterConfig,
    NodeGroupConfig,
    PrincipalArn,
)
from burrow.common.settings import NetworkConfig
from burrow.errors import ConfigError
from burrow.merge import deep_merge
from burrow.monitoring.settings import (  # noqa: F401 - importable here as before
    AlertReceiver,
    AlertThresholds,
    SecretKeyRef,
)
from burrow.pins import PINS
from burrow.props_errors import OneLineModel  # noqa: F401 - importable here as before
from burrow.settings import (  # noqa: F401 - the library's settings types, importable here as before
    AccountId,
    DnsLabel,
    Image,
    Model,
    Quantity,
    RegionName,
    ResourceAmounts,
    Resources,
    Tier,
    ipv4_networks,
)
from burrow.settings import distinct as _distinct

# Kubernetes versions Burrow validates objects against (kubernetes-validate ships their schemas)
# and EKS offers. Adding one here is a deliberate, reviewed step.
SUPPORTED_KUBERNETES_VERSIONS = ("1.31", "1.32", "1.33", "1.34", "1.35")


class ExistingClusterConfig(Model):
    """A cluster that already exists (kind, minikube, …), reached through a kubeconfig context."""

    kubeconfig_path: str = "~/.kube/config"
    context: str = Field(min_length=1)
    #: StorageClasses the cluster has (kind and minikube ship `standard`); volumes may name only these.
    storage_classes: list[DnsLabel] = Field(default_factory=list)


class ClusterConfig(Model):
    """How the environment's cluster comes to exist: `existing` (kubeconfig) or `eks` (Burrow makes it).

    Both sections may be present (defaults carry `eks`); `provider` picks the one used.
    """

    provider: Literal["existing", "eks"]
    existing: ExistingClusterConfig | None = None
    eks: EksClusterConfig | None = None
    #: Where deploys reach an EKS cluster's API from (unused for an existing cluster).
    api_access: ApiAccessConfig = ApiAccessConfig()

    @model_validator(mode="after")
    def _selected_section(self) -> ClusterConfig:
        if getattr(self, self.provider) is None:
            raise ValueError(f"provider {self.provider!r} needs a 'cluster.{self.provider}' section")
        return self


#: The AWS commercial regions an environment may use (Burrow's stacks need EKS, ACM and Route 53 there).
AWS_REGIONS = (
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "ca-west-1", "sa-east-1", "mx-central-1",
    "eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2",
    "il-central-1", "me-south-1", "me-central-1", "af-south-1", "ap-east-1", "ap-south-1", "ap-south-2",
    "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
    "ap-southeast-4", "ap-southeast-5", "ap-southeast-7",
)
RoleArn = Annotated[str, StringConstraints(pattern=r"^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$")]


RoleName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+=,.@_/-]{1,512}$")]


class DeployerRoles(Model):
    """The roles of the environment's account that run Burrow's Terraform, by name (with any path).
    The account's bootstrap makes them, not Burrow (docs/security.md, "Who can use each role"). The
    state bucket and its key, and the backup bucket and its key, admit these roles and nobody
    else (besides Velero's own role, for backups)."""

    #: Applies every stack; administers the state and backup buckets and their keys.
    #: default: the deploy role Burrow creates (`burrow-<env>-deploy`, docs/delivery-security.md)
    deploy: RoleName | None = None
    #: Reads every state and writes only lock files (`make plan`, `make pr-diffs`).
    #: default: Burrow's plan role (`burrow-<env>-plan`)
    plan: RoleName | None = None
    #: Reads and writes `<env>/previews/*` and reads `<env>/cluster.tfstate`: only where previews are enabled.
    #: default: Burrow's previews role (`burrow-<env>-previews`)
    preview: RoleName | None = None
    #: Principals that bootstrap the environment and may recover it (they administer both keys and
    #: read and write state like the deploy role). The account's root user always administers the keys.
    admins: list[RoleName] = Field(default_factory=lambda: ["burrow-admin"])


class AwsConfig(Model):
    """Where a cloud environment lives: its region, its AWS account, and how Terraform gets there."""

    #: The (primary) region. With `regions`, the region of the environment's first entry.
    region: RegionName = "eu-west-1"
    #: The environment's AWS account (12 digits, quoted in YAML). Every AWS provider and the state
    #: backend refuse to run with credentials of any other account (`allowed_account_ids`).
    #: Required for EKS environments.
    account_id: AccountId | None = None
    #: A role to assume in that account for every AWS provider and the state backend. default: use
    #: the caller's credentials as they are
    role_arn: RoleArn | None = None
    #: The external id the role's trust policy asks for (needs role_arn).
    external_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9+=,.@:/-]{2,1224}$")] | None = None
    #: Allow role_arn to name a role in another account than account_id (a role that itself
    #: reaches into the environment's account). default: refused
    cross_account_role: bool = False
    #: The GitHub repository (owner/name) whose workflows get the environment's delivery roles
    #: (deploy, plan, images; previews where hosted) through GitHub's OIDC provider, each bound to one
    #: OIDC subject (docs/delivery-security.md). default: no delivery roles
    github_repository: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")] | None = None
    #: The roles that deploy and plan this environment (names in `account_id`).
    roles: DeployerRoles = DeployerRoles()

    @property
    def role_account(self) -> str | None:
        return self.role_arn.split(":")[4] if self.role_arn else None

    @model_validator(mode="after")
    def _role(self) -> AwsConfig:
        if self.external_id and not self.role_arn:
            raise ValueError("external_id is only used with role_arn: set role_arn too, or remove external_id")
        return self


class StateConfig(Model):
    """Where Terraform keeps each stack's state.

    `local` for `dev`; `s3` (with S3-native lock files) for cloud environments.
    """

    backend: Literal["local", "s3"] = "local"
    bucket: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")

    @model_validator(mode="after")
    def _bucket_for_s3(self) -> StateConfig:
        if self.backend == "s3" and not self.bucket:
            raise ValueError("backend 's3' needs 'bucket' (the state bucket's name)")
        return self


class RegistryConfig(Model):
    """ECR repositories for Burrow's own images."""

    keep_images: int = Field(default=30, ge=1, le=1000)
    #: Whether this environment's common layer creates the repositories (`burrow/<image>`). ECR names
    #: are unique in an account and region: environments sharing one let one of them own the
    #: repositories (images are built once and promoted by digest) and set `create: false`.
    create: bool = True


class ChartAddOnConfig(Model):
    enabled: bool = True


ImageDigest = Annotated[str, StringConstraints(pattern=r"^sha256:[0-9a-f]{64}$")]


class AddOnsConfig(Model):
    metrics_server: ChartAddOnConfig = ChartAddOnConfig()
    keda: ChartAddOnConfig = ChartAddOnConfig()
    #: Digests of the add-on charts' images: chart -> image name (`burrow.pins`, each pin's `images`)
    #: -> `sha256:…`. A release file fills them in (its `third_party` digests); set by hand only to pin
    #: one image without a release. default: none (each chart's tags)
    image_digests: dict[str, dict[str, ImageDigest]] = Field(default_factory=dict)

    @field_validator("image_digests")
    @classmethod
    def _known_images(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for chart, digests in value.items():
            pin = PINS.get(chart)
            if pin is None or not pin.images:
                raise ValueError(f"{chart!r} is no add-on chart with images; charts: "
                                 f"{', '.join(name for name, p in PINS.items() if p.images)}")
            unknown = sorted(set(digests) - {image.name for image in pin.images})
            if unknown:
                raise ValueError(f"{chart}: no image named {', '.join(unknown)}; its images: "
                                 f"{', '.join(image.name for image in pin.images)}")
        return value


class WorkerConfig(WorkerScaling):
    """Burrow's producer or consumer. `replicas` and its bounds come from the library's
    `WorkerScaling` (`QueueWorkerProps` derives from it too); `autoscaling` defaults to the preset's."""

    image: Image
    resources: Resources


class ProducerConfig(WorkerConfig):
    publish_rate: float = Field(default=1.0, ge=0, le=10000, description="messages per second; 0 disables")
    #: default: the producer preset's (CPU)
    autoscaling: CpuAutoscalingConfig = PRODUCER_AUTOSCALING


class ConsumerConfig(WorkerConfig):
    prefetch: int = Field(default=10, ge=1, le=1000)
    #: default: the consumer preset's (KEDA on its queue)
    autoscaling: QueueAutoscalingConfig = CONSUMER_AUTOSCALING


#: The layers an environment's stacks are named after (`<env>-<layer>`).
LAYERS = ("common", "cluster", "addons", "app", "global")


class WaiverConfig(Model):
    """Turns one guardrail rule off for one construct of this environment. The reason is printed
    at every synth and recorded in the stack's JSON."""

    rule: str = Field(min_length=1)
    #: `<layer>/<construct path in that layer's stack>`, as a refusal names it after the stack's
    #: name: `app/rabbitmq`, `addons/karpenter/node-pool`. Every region's stack of that layer.
    path: str = Field(pattern=rf"^({'|'.join(LAYERS)})/[^/]+(/[^/]+)*$")
    reason: str = Field(min_length=20, description="why this is acceptable, for a reviewer")


class GuardrailsConfig(Model):
    waivers: list[WaiverConfig] = Field(default_factory=list)


class AppsConfig(Model):
    producer: ProducerConfig
    consumer: ConsumerConfig


class KubernetesConfig(Model):
    """The cluster's Kubernetes minor version. On EKS it must be one EKS offers in standard support
    (`burrow.k8s.versions`); an existing cluster (dev's kind) only needs Burrow's object schemas."""

    version: str
    #: Accept a version in EKS extended support (USD 0.50 more per cluster-hour) instead of refusing it.
    #: default: false
    extended_support: bool = False

    @field_validator("version")
    @classmethod
    def _supported(cls, value: str) -> str:
        if value not in SUPPORTED_KUBERNETES_VERSIONS:
            raise ValueError(f"supported versions are {', '.join(SUPPORTED_KUBERNETES_VERSIONS)}")
        return value


class PreviewsConfig(Model):
    """Preview environments of pull requests, hosted in this environment's cluster (`make preview PR=<n>`).

    Each preview is its own app stack `pr-<n>-app` in namespace `burrow-pr-<n>`: one RabbitMQ
    without persistence, the workers at the PR's images, autoscaling capped at `max_replicas`,
    under `quota`, removed after `ttl_hours`.
    """

    enabled: bool = False
    ttl_hours: int = Field(default=72, ge=1, le=24 * 30)
    max_replicas: int = Field(default=2, ge=1, le=10)
    quota: NamespaceQuota = NamespaceQuota()


class RegionConfig(Model):
    """One AWS region of the environment (a cell: its own network, cluster and RabbitMQ). The first
    entry of `regions` is the primary: its stacks keep the names and state keys of a single-region
    environment, it is deployed first and holds the state bucket and the registries.

    The other keys override the environment's settings in this region only (deep-merged, then
    validated like the environment): typically `network.vpc_cidr`, zones and sizes."""

    name: RegionName
    network: dict[str, Any] | None = None
    cluster: dict[str, Any] | None = None
    rabbitmq: dict[str, Any] | None = None
    apps: dict[str, Any] | None = None

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in AWS_REGIONS:
            raise ValueError(f"not an AWS region Burrow knows; known: {', '.join(AWS_REGIONS)}")
        return value

    @property
    def overrides(self) -> dict[str, Any]:
        return {key: value for key in ("network", "cluster", "rabbitmq", "apps")
                if (value := getattr(self, key)) is not None}


class FederationConfig(Model):
    """Messages that cross regions on purpose: RabbitMQ's federation plugin links the regions'
    brokers (cells). `queue` (default) federates the work queue: a region whose consumers are down
    or busy is drained by another region's idle consumers, and each message is still processed
    once. `exchange` federates the work exchange: every region receives a copy of every message
    published anywhere (processed once per region)."""

    enabled: bool = False
    mode: Literal["queue", "exchange"] = "queue"
    #: The regions whose brokers federate with each other (every pair, both ways). default: all
    regions: list[RegionName] | None = None
    #: How many times a message may cross a federation link (1: never back and forth).
    max_hops: int = Field(default=1, ge=1, le=5)
    #: Unacknowledged messages in flight per link.
    prefetch: int = Field(default=100, ge=1, le=10000)
    reconnect_delay_seconds: int = Field(default=5, ge=1, le=600)

    @field_validator("regions")
    @classmethod
    def _distinct_regions(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else _distinct(values, "region")


class EnvironmentConfig(Model):
    """One environment, after `default.yaml` and its own file are merged."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9]{1,11}$")]
    tier: Tier
    namespace: DnsLabel
    kubernetes: KubernetesConfig
    cluster: ClusterConfig
    aws: AwsConfig = AwsConfig()
    state: StateConfig = StateConfig()
    network: NetworkConfig = NetworkConfig()
    registry: RegistryConfig = RegistryConfig()
    addons: AddOnsConfig = AddOnsConfig()
    rabbitmq: RabbitMqConfig
    messaging: MessagingConfig = MessagingConfig()
    apps: AppsConfig
    guardrails: GuardrailsConfig = GuardrailsConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    backups: BackupsConfig = BackupsConfig()
    previews: PreviewsConfig = PreviewsConfig()
    #: How the app layer reaches the cluster: `terraform` (helm_release resources in `<env>-app`) or
    #: `gitops` (Flux reconciles the tree `make gitops-export` writes; see `gitops`).
    delivery: Literal["terraform", "gitops"] = "terraform"
    gitops: GitOpsConfig | None = None
    #: The AWS regions the environment runs in, primary first. default: only `aws.region`
    regions: list[RegionConfig] = Field(default_factory=list)
    ingress: IngressConfig = IngressConfig()
    federation: FederationConfig = FederationConfig()

    @field_validator("tier")
    @classmethod
    def _not_preview(cls, tier: Tier) -> Tier:
        if tier == Tier.PREVIEW:
            raise ValueError("'preview' is the tier of pull-request previews (make preview); an environment is "
                             "development, staging or production")
        return tier

    @property
    def karpenter(self) -> KarpenterConfig | None:
        """The environment's Karpenter settings when its workloads run on Karpenter's nodes, else None."""
        eks = self.cluster.eks if self.on_aws else None
        return eks.karpenter if eks is not None and eks.karpenter.enabled else None

    @property
    def on_aws(self) -> bool:
        """True when the environment's cluster is EKS, i.e. it has AWS common and cluster layers."""
        return self.cluster.provider == "eks"

    @model_validator(mode="after")
    def _consistent(self) -> EnvironmentConfig:
        if self.on_aws and self.state.backend != "s3":
            raise ValueError("an EKS environment keeps its state in S3: set state.backend to 's3'")
        return self

    # --- regions -------------------------------------------------------------------------------
    @property
    def region_names(self) -> list[str]:
        """Every region of the environment, the primary first."""
        return [region.name for region in self.regions] or [self.aws.region]

    @property
    def primary_region(self) -> str:
        return self.region_names[0]

    @property
    def multi_region(self) -> bool:
        return len(self.region_names) > 1

    @property
    def is_primary(self) -> bool:
        """True for the primary region's view of the environment (and for a single-region one)."""
        return self.aws.region == self.primary_region

    @property
    def stack_prefix(self) -> str:
        """`<env>` for the primary region (single-region names and state keys, unchanged), else
        `<env>-<region>`: what stack names start with."""
        return self.name if self.is_primary else f"{self.name}-{self.aws.region}"

    @property
    def state_prefix(self) -> str:
        """`<env>` for the primary region, else `<env>/<region>`: the folder of the stacks' state keys."""
        return self.name if self.is_primary else f"{self.name}/{self.aws.region}"

    def in_region(self, name: str) -> EnvironmentConfig:
        """The environment as region `name` sees it: `aws.region` set to it and that region's
        overrides deep-merged in (the loader has validated every region already). A region the
        environment does not have is a `ConfigError`."""
        if name not in self.region_names:
            raise ConfigError(f"environment {self.name} has no region {name!r}; its regions: {', '.join(self.region_names)}")
        [region] = [r for r in self.regions if r.name == name] or [RegionConfig(name=name)]
        data = deep_merge(self.model_dump(mode="json"), region.overrides)
        data["aws"] = {**data.get("aws", {}), "region": name}
        return EnvironmentConfig.model_validate(data)

    def regional(self) -> list[EnvironmentConfig]:
        """One view per region, the primary first (a single-region environment: itself)."""
        return [self.in_region(name) for name in self.region_names] if self.regions else [self]

    @property
    def federation_peers(self) -> list[str]:
        """The other regions this region's broker federates with (none outside federation)."""
        regions = self.federated_regions
        return [r for r in regions if r != self.aws.region] if self.aws.region in regions else []

    @property
    def federated_regions(self) -> list[str]:
        """The regions whose brokers federate with each other; empty without federation."""
        if not self.federation.enabled:
            return []
        return self.federation.regions or self.region_names


ENVIRONMENT_NAME = re.compile(r"^[a-z][a-z0-9]{1,11}$")
