"""Build one environment's stacks. AWS bindings load only for environments that run on AWS."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from burrow.app.rabbitmq import MANAGED_VALUES
from burrow.config.helm_values import chart_values
from burrow.config.schema import EnvironmentConfig
from burrow.errors import ConfigError
from burrow.gitops import gitops_tree
from burrow.previews import PreviewRequest
from burrow.spi import ClusterInfo, KubeconfigCluster
from burrow.stacks.addons import AddOnsLayer, configured_addons
from burrow.stacks.app import AppLayer
from burrow.stacks.base import BurrowStack
from burrow.synthesis import synthesize
from constructs import Construct


@dataclass(frozen=True)
class EnvironmentStacks:
    """The stacks of one environment, in deploy order."""

    env: EnvironmentConfig
    stacks: tuple[BurrowStack, ...]
    app: AppLayer
    #: `delivery: gitops`: the tree Flux reconciles ({path: text}); the app layer is then no stack.
    gitops: dict[str, str] | None = None
    #: Every region's app layer, the primary's (`app`) first.
    apps: tuple[AppLayer, ...] = ()


def existing_cluster(env: EnvironmentConfig) -> ClusterInfo:
    """The `existing` cluster provider: a cluster someone else made, reached by kubeconfig context."""
    existing = env.cluster.existing
    if existing is None:
        raise ConfigError(f"environment {env.name}: cluster.existing is required for provider 'existing'")
    return KubeconfigCluster(
        kubeconfig_path=existing.kubeconfig_path, context=existing.context, version=env.kubernetes.version
    )


def build_environment(scope: Construct, env: EnvironmentConfig, *, helm_dir: Path) -> EnvironmentStacks:
    """Create `<env>-common`, `<env>-cluster` (AWS only), `<env>-addons` and `<env>-app`; with several
    regions, the same four per further region (`<env>-<region>-<layer>`), and with a public producer
    `<env>-global` right after the primary region's common layer, whose bucket holds its state
    (burrow.stacks.global_)."""
    rabbitmq_values = chart_values(helm_dir / "rabbitmq", env.name, MANAGED_VALUES)
    if not env.on_aws:
        cluster = existing_cluster(env)
        addons = AddOnsLayer(scope, env, cluster=cluster, addons=configured_addons(env, cluster))
        app = AppLayer(scope, env, cluster=cluster, rabbitmq_values=rabbitmq_values)
        app.add_dependency(addons)
        return EnvironmentStacks(env=env, stacks=(addons, app), app=app)
    from burrow.stacks.aws import ClusterLayer, CommonLayer  # noqa: PLC0415 - keeps AWS off the dev path

    stacks: list[BurrowStack] = []
    zone = None
    commons: dict[str, CommonLayer] = {}
    apps: list[AppLayer] = []
    gitops = None
    for view in env.regional():
        common = CommonLayer(scope, view, peers=[commons[r] for r in view.federation_peers if r in commons])
        if stacks:
            # One region at a time, the primary first: a region starts after the one before is done.
            common.add_dependency(stacks[-1])
        commons[view.aws.region] = common
        stacks.append(common)
        if env.ingress.enabled and zone is None:
            from burrow.stacks.global_ import GlobalLayer  # noqa: PLC0415

            # After the primary region's common layer: that stack creates the bucket holding
            # `<env>-global`'s state (and bootstraps on local state with no dependency of its own).
            global_layer = GlobalLayer(scope, env)
            global_layer.add_dependency(common)
            stacks.append(global_layer)
            zone = (global_layer.zone_id, global_layer.zone_name)
        cluster_layer = ClusterLayer(scope, view, network=common.network, backups=common.backups, zone=zone)
        cluster = cluster_layer.cluster_info
        addons = AddOnsLayer(scope, view, cluster=cluster, addons=configured_addons(view, cluster))
        stacks += [cluster_layer, addons]
        if view.delivery == "gitops":
            app = gitops_app_layer(view, cluster, rabbitmq_values)
            gitops = gitops_tree(app)
        else:
            app = AppLayer(scope, view, cluster=cluster, rabbitmq_values=rabbitmq_values)
            # KEDA's CRDs must exist before the app's objects that use them are applied, and
            # Karpenter's NodePool before the app's pods that only its nodes take.
            app.add_dependency(addons)
            stacks.append(app)
        apps.append(app)
    return EnvironmentStacks(env=env, stacks=tuple(stacks), app=apps[0], gitops=gitops, apps=tuple(apps))


def gitops_app_layer(env: EnvironmentConfig, cluster: ClusterInfo, rabbitmq_values: list) -> AppLayer:
    """The app layer of a `delivery: gitops` environment, built apart from the environment's stacks
    (Flux, not Terraform, applies it) and synthesized on its own so the guardrails still judge it.
    It never talks to the cluster, so it gets a placeholder connection (same zones, same secrets)."""
    import tempfile  # noqa: PLC0415

    from cdktf import App  # noqa: PLC0415

    placeholder = KubeconfigCluster(kubeconfig_path="/dev/null", context="gitops", version=env.kubernetes.version,
                                    multi_zone=cluster.multi_zone, secrets=cluster.secrets)
    with tempfile.TemporaryDirectory(prefix="burrow-gitops-") as outdir:
        scratch = App(outdir=outdir)
        app = AppLayer(scratch, env, cluster=placeholder, rabbitmq_values=rabbitmq_values)
        synthesize(scratch)
    return app


def build_preview(scope: Construct, host: EnvironmentConfig, request: PreviewRequest, *,
                  helm_dir: Path) -> EnvironmentStacks:
    """Create `pr-<n>-app`, one pull request's preview in `host`'s cluster (burrow.previews)."""
    from burrow.stacks.preview import PreviewAppLayer  # noqa: PLC0415 - only previews need it

    app = PreviewAppLayer(scope, host, request,
                          rabbitmq_values=tuple(chart_values(helm_dir / "rabbitmq", host.name, MANAGED_VALUES)))
    return EnvironmentStacks(env=app.env, stacks=(app,), app=app)
