"""Checks across sections of a valid environment: will what it asks for actually run?

They run in the loader, before anything is synthesized, and each problem names the key, its
value and what would work (the loader adds the file):
- every StorageClass the environment names exists: one Burrow creates (`gp3` on EKS, see
  `burrow.addons.storage`) or one the existing cluster is configured to have;
- brokers with hard anti-affinity fit on the nodes the cluster guarantees (the node groups'
  minimum), so the last broker never stays Pending and the release never rolls back;
- an EKS environment names its AWS account, and a role it assumes belongs to that account
  (unless `aws.cross_account_role` says otherwise);
- Karpenter's limits hold at least one node of the smallest instance it may choose;
- backups run only where there is AWS to keep them (an EKS environment), and previews only in an
  EKS environment's cluster.
- regions: listed once each, the primary (first) is `aws.region`, only for EKS environments;
  federation names only regions the environment has; a public producer in production has TLS.
Across environments (`environments_problems`): one state bucket name is used from one account only,
and no two environments create the same ECR repository, IAM role name or S3 bucket in one scope.
Across the regions of one environment (`regional_problems`): VPC networks do not overlap (they are
peered for federation, and overlapping networks cannot be routed).
"""

from __future__ import annotations

import ipaddress
from datetime import date

from burrow.addons.settings import GP3, INSTANCE_SIZE_VCPUS
from burrow.config.release import SERVICES
from burrow.config.schema import EnvironmentConfig, Tier
from burrow.k8s.versions import eks_version_problem, today

# The StorageClasses Burrow's add-ons stack creates, per cluster provider.
CREATED_STORAGE_CLASSES = {"eks": (GP3,), "existing": ()}

Problem = tuple[tuple[str, ...], object, str]  # key path, value, what is allowed


def available_storage_classes(env: EnvironmentConfig) -> tuple[str, ...]:
    existing = env.cluster.existing.storage_classes if env.cluster.provider == "existing" and env.cluster.existing else []
    return (*CREATED_STORAGE_CLASSES[env.cluster.provider], *existing)


def guaranteed_nodes(env: EnvironmentConfig) -> int | None:
    """Nodes the brokers can count on; None when unknown or unbounded. The node groups' min_size
    summed, or with Karpenter (where the brokers run) the most nodes its limits allow."""
    if env.cluster.provider != "eks" or env.cluster.eks is None:
        return None
    karpenter = env.karpenter
    if karpenter is not None:
        if karpenter.limits is None:
            return None
        vcpus, gib = karpenter.smallest_node
        return min(karpenter.limits.cpu // vcpus, karpenter.limits.memory_gib // gib)
    return sum(group.min_size for group in env.cluster.eks.node_groups.values())


def storage_problems(env: EnvironmentConfig) -> list[Problem]:
    wanted = []
    if env.rabbitmq.persistence.enabled and env.rabbitmq.persistence.storage_class:
        wanted.append((("rabbitmq", "persistence", "storage_class"), env.rabbitmq.persistence.storage_class))
    if env.monitoring.enabled and env.monitoring.storage_class:
        wanted.append((("monitoring", "storage_class"), env.monitoring.storage_class))
    available = available_storage_classes(env)
    shown = ", ".join(available) or "none (leave it unset for the cluster's default class)"
    return [
        (key, name, f"no such StorageClass on this cluster; available: {shown}")
        for key, name in wanted
        if name not in available
    ]


def scheduling_problems(env: EnvironmentConfig) -> list[Problem]:
    nodes = guaranteed_nodes(env)
    replicas = env.rabbitmq.replicas
    if nodes is None or env.rabbitmq.anti_affinity != "hard" or replicas <= nodes:
        return []
    return [
        (
            ("rabbitmq", "replicas"),
            replicas,
            f"{replicas} brokers with hard anti-affinity need {replicas} nodes, but "
            + (f"Karpenter's limits allow at most {nodes} of its smallest instance; raise cluster.eks.karpenter.limits"
               if env.karpenter else
               f"the node groups guarantee {nodes} (sum of cluster.eks.node_groups.*.min_size); raise min_size")
            + ", or set anti_affinity: soft",
        )
    ]


def account_problems(env: EnvironmentConfig) -> list[Problem]:
    if not env.on_aws:
        return []
    if env.aws.account_id is None:
        return [(("aws", "account_id"), None, "an EKS environment names its AWS account: 12 digits, quoted")]
    if env.aws.external_id:
        return [(("aws", "external_id"), env.aws.external_id,
                 "`aws eks get-token`, which authenticates the kubernetes and helm providers to the EKS cluster as "
                 "aws.role_arn, cannot pass an external id, so those stacks could not assume the role; remove "
                 "external_id and let the role's trust policy name the principals that deploy")]
    role_account = env.aws.role_account
    if role_account and role_account != env.aws.account_id and not env.aws.cross_account_role:
        return [(("aws", "role_arn"), env.aws.role_arn,
                 f"the role is in account {role_account}, not the environment's {env.aws.account_id}; use a role "
                 "in that account, or set aws.cross_account_role: true if this role reaches into it")]
    return []


def karpenter_problems(env: EnvironmentConfig) -> list[Problem]:
    karpenter = env.karpenter
    if karpenter is None or karpenter.limits is None:
        return []
    vcpus, gib = karpenter.smallest_node
    key = ("cluster", "eks", "karpenter", "limits")
    allowed = (f"at least one node of the smallest instance allowed ({vcpus} vCPUs, {gib} GiB: size "
               f"{min(karpenter.instance_sizes, key=INSTANCE_SIZE_VCPUS.get)} of categories {', '.join(karpenter.instance_categories)})")
    problems: list[Problem] = []
    if karpenter.limits.cpu < vcpus:
        problems.append(((*key, "cpu"), karpenter.limits.cpu, allowed))
    if karpenter.limits.memory_gib < gib:
        problems.append(((*key, "memory_gib"), karpenter.limits.memory_gib, allowed))
    return problems


def backup_problems(env: EnvironmentConfig) -> list[Problem]:
    if not env.backups.enabled or env.on_aws:
        return []
    return [(("backups", "enabled"), True,
             "backups need an EKS environment (an S3 bucket and EBS snapshots); set backups.enabled: false")]


def preview_problems(env: EnvironmentConfig) -> list[Problem]:
    if not env.previews.enabled or env.on_aws:
        return []
    return [(("previews", "enabled"), True,
             "previews are hosted in a shared EKS cluster with External Secrets (they generate their broker's "
             "credentials in the cluster); set previews.enabled: false here")]


def delivery_problems(env: EnvironmentConfig) -> list[Problem]:
    if env.delivery != "gitops":
        return []
    if env.gitops is None:
        return [(("gitops",), None, "delivery: gitops needs gitops.repository (and optionally branch, path) for Flux")]
    if not env.on_aws:
        return [(("delivery",), "gitops", "GitOps keeps the broker's credentials out of Git through External Secrets, "
                 "which only EKS environments have; use delivery: terraform here")]
    if not env.gitops.signing_keys:
        return [(("gitops", "signing_keys"), [], "Flux applies only signed commits: list the ASCII-armored OpenPGP "
                 "public key of each signer of the GitOps repository (gpg --armor --export <key id>)")]
    return []


def region_problems(env: EnvironmentConfig) -> list[Problem]:
    names = [region.name for region in env.regions]
    problems: list[Problem] = []
    for index, name in enumerate(names):
        if name in names[:index]:
            problems.append((("regions", str(index), "name"), name,
                             f"region {name} is listed twice (first as regions.{names.index(name)}); each region once"))
    if names and names[0] != env.aws.region:
        problems.append((("regions", "0", "name"), names[0],
                         f"the first region is the primary and must be aws.region ({env.aws.region!r}); list "
                         f"{env.aws.region} first, or set aws.region: {names[0]}"))
    if env.multi_region and not env.on_aws:
        problems.append((("regions",), names, "several regions need EKS environments (cluster.provider: eks)"))
    for region in env.federation.regions or []:
        if region not in env.region_names:
            problems.append((("federation", "regions"), env.federation.regions,
                             f"{region} is not a region of this environment ({', '.join(env.region_names)}); "
                             "federate only between the environment's regions"))
    if env.federation.enabled and not env.ingress.enabled:
        problems.append((("federation", "enabled"), True,
                         "federation names each region's broker in the environment's Route 53 zone: configure "
                         "ingress (enabled, host, zone) too"))
    if env.multi_region and env.delivery == "gitops":
        problems.append((("delivery",), "gitops", "GitOps delivery is for single-region environments for now (one "
                         "tree per environment); use delivery: terraform with several regions"))
    if env.federation.enabled and len(env.federated_regions) < 2:
        problems.append((("federation", "enabled"), True,
                         f"federation links at least two regions; this environment federates "
                         f"{', '.join(env.federated_regions) or 'none'} (add regions, or set federation.enabled: false)"))
    return problems


def ingress_problems(env: EnvironmentConfig) -> list[Problem]:
    if not env.ingress.enabled:
        return []
    if not env.on_aws:
        return [(("ingress", "enabled"), True, "the public producer is served by the AWS Load Balancer Controller "
                 "and Route 53: it needs an EKS environment; keep ingress.enabled: false here")]
    problems: list[Problem] = []
    if env.tier == Tier.PRODUCTION and not env.ingress.tls:
        problems.append((("ingress", "tls"), False, "a public producer in a production environment serves HTTPS "
                         "only: set ingress.tls: true (an ACM certificate is issued for it)"))
    if env.ingress.authentication == "none":
        problems.append((("ingress", "authentication"), "none", "a public producer publishes only for its "
                         "bearer token, in every tier: set ingress.authentication: token"))
    return problems


def regional_problems(regional: list[EnvironmentConfig]) -> list[Problem]:
    """Problems between the regions of one environment (after each region's overrides)."""
    problems: list[Problem] = []
    for index, env in enumerate(regional):
        mine = ipaddress.IPv4Network(env.network.vpc_cidr)
        for other in regional[:index]:
            if mine.overlaps(ipaddress.IPv4Network(other.network.vpc_cidr)):
                problems.append((("regions", str(index), "network", "vpc_cidr"), env.network.vpc_cidr,
                                 f"overlaps {other.aws.region}'s {other.network.vpc_cidr}; the regions' networks are "
                                 "peered, so each region needs a VPC range of its own"))
    return problems


def environments_problems(envs: list[EnvironmentConfig]) -> list[str]:
    """Problems between environments: a state bucket name claimed from two accounts."""
    owners: dict[str, dict[str, list[str]]] = {}
    for env in envs:
        if env.on_aws and env.state.bucket and env.aws.account_id:
            owners.setdefault(env.state.bucket, {}).setdefault(env.aws.account_id, []).append(env.name)
    return shared_name_problems(envs) + [
        f"state.bucket = {bucket!r} is used by environments in different AWS accounts ("
        + "; ".join(f"{account}: {', '.join(sorted(names))}" for account, names in sorted(accounts.items()))
        + "); a bucket name is global and lives in one account: give each account's environments their own"
        for bucket, accounts in sorted(owners.items())
        if len(accounts) > 1
    ]


def unique_names(env: EnvironmentConfig) -> list[tuple[str, str, str, object, str]]:
    """The names `env` creates that AWS keeps unique in a scope: (scope, what and name, key, value, file).
    ECR repositories per account and region, IAM roles per account (every name starts with the
    cluster name `burrow-<env>[-<region>]`), S3 buckets worldwide."""
    if not env.on_aws or not env.aws.account_id:
        return []
    account, file = env.aws.account_id, f"{env.name}.yaml"
    claims = []
    if env.registry.create:
        claims += [(f"account {account}, {env.primary_region}", f"ECR repository burrow/{image}", "registry.create",
                    True, file) for image in SERVICES]
    if env.state.bucket:
        claims.append(("the world", f"S3 bucket {env.state.bucket}", "state.bucket", env.state.bucket, file))
    for region in env.region_names:
        prefix = env.name if region == env.primary_region else f"{env.name}-{region}"
        claims.append((f"account {account}", f"IAM role names burrow-{prefix}-*", "name", env.name, file))
    return claims


def shared_name_problems(envs: list[EnvironmentConfig]) -> list[str]:
    """Two environments that would create the same account- or globally-unique name: whichever
    deploys second fails (RepositoryAlreadyExistsException, EntityAlreadyExists, BucketAlreadyOwnedByYou)."""
    first: dict[tuple[str, str], str] = {}
    problems = []
    for env in sorted(envs, key=lambda e: e.name):
        for scope, name, key, value, file in unique_names(env):
            owner = first.setdefault((scope, name), env.name)
            if owner != env.name:
                problems.append(f"{file}: {key} = {value!r}: {name} is also created by environment {owner} in {scope}; "
                                "names there are unique"
                                + ("; let one environment own the repositories and set registry.create: false in "
                                   "the others" if key == "registry.create" else ""))
    return problems


def kubernetes_problems(env: EnvironmentConfig, day: date | None = None) -> list[Problem]:
    """An EKS cluster runs a version EKS offers, in standard support unless extended support is accepted."""
    if not env.on_aws:
        return []
    k8s = env.kubernetes
    problem = eks_version_problem(k8s.version, day or today(), extended=k8s.extended_support)
    return [(("kubernetes", "version"), k8s.version, problem)] if problem else []


def deployability_problems(env: EnvironmentConfig) -> list[Problem]:
    return (kubernetes_problems(env) + storage_problems(env) + scheduling_problems(env) + account_problems(env) + karpenter_problems(env)
            + backup_problems(env) + preview_problems(env) + delivery_problems(env) + ingress_problems(env))
