"""`make upgrade-plan ENV=<env> TO=<version> [FROM=<version>]`: the ordered steps that move an
environment's clusters to the next Kubernetes minor version.

EKS upgrades a control plane one minor version at a time, and only to a version it offers
(`burrow.k8s.versions`); anything else is refused, with the allowed value. FROM defaults to the
version the environment file sets (give the running version when the file is already ahead).
The charts whose CRDs need a step come from the synthesized stacks (`--outdir`, which `make`
synthesizes first); `--check` only validates the request. docs/upgrades.md is the runbook.

Usage: python -m burrow_tools.upgrade_plan <env> <to> [--from VERSION] (--check | --outdir DIR)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from burrow.config.loader import load_environment
from burrow.config.schema import SUPPORTED_KUBERNETES_VERSIONS, EnvironmentConfig
from burrow.errors import BurrowError
from burrow.k8s.versions import EKS_VERSIONS, minor, today
from burrow.pins import pin_of
from burrow_tools.charts import chart_releases

ROOT = Path(__file__).resolve().parents[2]
#: The EKS managed add-ons `burrow.cluster.eks` installs, in the order AWS upgrades them.
MANAGED_ADDONS = ("vpc-cni", "kube-proxy", "coredns", "aws-ebs-csi-driver")


class Refused(BurrowError):
    """The requested upgrade is not one EKS (or Burrow) can do."""


def next_minor(version: str) -> str:
    major, number = minor(version)
    return f"{major}.{number + 1}"


def check_request(env: EnvironmentConfig, source: str, target: str) -> None:
    """Refuse a version EKS does not offer or a jump of more than one minor version."""
    offered = EKS_VERSIONS if env.on_aws else SUPPORTED_KUBERNETES_VERSIONS
    where = "EKS offers" if env.on_aws else "Burrow validates objects for"
    try:
        source_minor, target_minor = minor(source), minor(target)
    except ValueError:
        raise Refused(
            f"versions are <major>.<minor> (FROM={source!r}, TO={target!r}); {where} {', '.join(offered)}"
        ) from None
    if source not in offered:
        raise Refused(f"FROM={source}: {where} {', '.join(offered)}")
    step = next_minor(source)
    allowed = step if step in offered else f"none yet ({source} is the newest version here)"
    if target not in offered:
        raise Refused(f"TO={target}: {where} {', '.join(offered)}; from {source} the allowed target is {allowed}")
    if target_minor <= source_minor:
        raise Refused(f"TO={target}: not newer than FROM={source}; the allowed target is {allowed}")
    if env.on_aws and target_minor != minor(step):
        raise Refused(
            f"TO={target}: EKS upgrades one minor version at a time; from {source} the allowed target is "
            f"{allowed} (plan each step in turn)"
        )


def crd_steps(env: EnvironmentConfig, outdir: Path) -> list[str]:
    """One line per chart release of the environment whose CRDs need attention when its version changes."""
    lines = []
    seen = set()
    for release in chart_releases(outdir):
        pin = pin_of(release.chart)
        if release.stack.split("-", 1)[0] != env.name or pin is None or not pin.crds or pin.chart in seen:
            continue
        seen.add(pin.chart)
        lines.append(f"   - {release.chart} {release.version} ({release.namespace}): {pin.crds}")
    return lines


def eks_plan(env: EnvironmentConfig, source: str, target: str, outdir: Path) -> list[str]:
    support = EKS_VERSIONS[target]
    status = support.support_on(today())
    lines = [
        f"Upgrade plan for {env.name}: Kubernetes {source} -> {target} "
        f"(EKS {status} support on {today()}; standard support until {support.standard_support_ends})",
    ]
    if status != "standard":
        lines.append(
            f"  {target} is past standard support: a step on the way, not a place to stay "
            f"(set kubernetes.extended_support: true only for the time the step takes)."
        )
    lines += [
        f"Regions in order, the primary first: {', '.join(env.region_names)}. Finish steps 2-7 in one region, "
        "check it, then the next.",
        "",
        "1. Prepare (once)",
        f'   - set kubernetes.version: "{target}" in environments/{env.name}.yaml (or default.yaml)',
        f"   - make synth ENV={env.name}          every object is validated against {target}'s schemas",
        "   - make verify-charts CHARTS_DIR=...   every chart renders at the pins for the new version",
        "   - make outdated CHARTS_DIR=...        and check each chart supports "
        f"{target} (Karpenter: its compatibility matrix)",
    ]
    if env.backups.enabled:
        lines.append(f"   - velero backup create before-{target} --include-namespaces {env.namespace} --wait")
    for region in env.region_names:
        view = env.in_region(region)
        cluster = f"burrow-{view.stack_prefix}"
        aws = f"--cluster-name {cluster} --region {region}"
        lines += [
            "",
            f"== {region}: cluster {cluster}",
            "2. Control plane (Terraform changes aws_eks_cluster.version only; 10-25 minutes)",
            f"   BURROW_ENV={env.name} npx cdktf deploy {view.stack_prefix}-cluster --output cdktf.out "
            "--ignore-missing-stack-dependencies",
            f"   aws eks wait cluster-active --name {cluster} --region {region}",
            f"3. Managed add-ons, one at a time, to their default version for {target}",
            f"   for addon in {' '.join(MANAGED_ADDONS)}; do",
            f"     version=$(aws eks describe-addon-versions --kubernetes-version {target} --addon-name $addon "
            f"--region {region} --query 'addons[0].addonVersions[?compatibilities[?defaultVersion]].addonVersion "
            "| [0]' --output text)",
            f"     aws eks update-addon {aws} --addon-name $addon --addon-version $version --resolve-conflicts OVERWRITE",
            f"     aws eks wait addon-active {aws} --addon-name $addon",
            "   done",
            "4. Managed node groups, one node at a time (update_config max_unavailable 1; drains honour PDBs)",
        ]
        for group in env.cluster.eks.node_groups:
            lines += [
                f"   aws eks update-nodegroup-version {aws} --nodegroup-name {group}",
                f"   aws eks wait nodegroup-active {aws} --nodegroup-name {group}",
            ]
        if env.karpenter is not None:
            lines += [
                f"5. Karpenter's nodes drift: the EC2NodeClass's AMI alias ({env.karpenter.ami_alias}) now resolves to "
                f"{target} AMIs; Karpenter replaces its nodes within the NodePool's disruption budget "
                f"({env.karpenter.disruption_budget or 'none'}). Wait until every node runs v{target}:",
                "   kubectl get nodeclaims",
                "   kubectl get nodes -L karpenter.sh/nodepool",
            ]
        else:
            lines.append("5. Karpenter: not enabled in this environment; nothing to do")
        lines.append(
            "6. Charts whose CRDs change when their version does (only when this upgrade also moves pins; "
            f"then make deploy ENV={env.name} REGION={region}):"
        )
        lines += crd_steps(env, outdir) or ["   - none"]
        lines += [
            f"7. The broker (namespace {env.namespace}): a quorum-safe rolling restart, one pod at a time, highest "
            'ordinal first, if any broker pod still runs on an old node (docs/upgrades.md, "The broker")',
            f"   make smoke ENV={env.name} REGION={region}",
        ]
    return lines


def local_plan(env: EnvironmentConfig, source: str, target: str) -> list[str]:
    return [
        f"Upgrade plan for {env.name}: Kubernetes {source} -> {target} on an existing cluster "
        f"(kubeconfig context {env.cluster.existing.context}); EKS's calendar does not apply.",
        f'1. set kubernetes.version: "{target}" in environments/{env.name}.yaml; make synth ENV={env.name}',
        f"2. recreate the local cluster on a {target} node image (kind: kindest/node:v{target}.<patch>)",
        f"3. make deploy ENV={env.name}",
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="upgrade-plan")
    parser.add_argument("env")
    parser.add_argument("to")
    parser.add_argument("--from", dest="source", default=None)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true")
    mode.add_argument("--outdir", type=Path)
    args = parser.parse_args(argv)
    try:
        env = load_environment(args.env, ROOT / "environments")
        source = args.source or env.kubernetes.version
        check_request(env, source, args.to)
    except BurrowError as exc:
        print(f"make upgrade-plan: {exc}")
        return 2
    if not args.check:
        print(
            "\n".join(eks_plan(env, source, args.to, args.outdir) if env.on_aws else local_plan(env, source, args.to))
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
