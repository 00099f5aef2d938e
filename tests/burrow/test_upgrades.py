"""Kubernetes versions and upgrades: EKS environments run a version EKS offers in standard support,
`make upgrade-plan` moves one minor version at a time in order, and the broker's rolling restart
is quorum-safe by the values Burrow gives the Bitnami chart."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date

import pytest
import yaml

from burrow.app.rabbitmq import MANAGED_VALUES
from burrow.config import checks
from burrow.config.helm_values import chart_values
from burrow.config.loader import load_environment, load_environments
from burrow.errors import ConfigError
from burrow.k8s.validate import validate_objects
from burrow.k8s.versions import EKS_VERSIONS, eks_version_problem, today
from burrow_tools.charts import chart_releases
from burrow_tools.upgrade_plan import Refused, check_request, eks_plan
from tests.support.services import ROOT

ON_THE_DAY = date(2026, 12, 2)  # 1.34 leaves standard support that day; 1.33 left it on 2026-07-29


def test_a_version_out_of_standard_support_is_refused_with_the_allowed_ones():
    assert eks_version_problem("1.33", ON_THE_DAY) == (
        "1.33 left EKS standard support on 2026-07-29 (extended support costs USD 0.50 more per cluster-hour); "
        "allowed on 2026-12-02: 1.35, or set kubernetes.extended_support: true"
    )
    assert "allowed on 2026-12-02: 1.35" in eks_version_problem("1.34", ON_THE_DAY)
    assert eks_version_problem("1.34", date(2026, 12, 1)) is None
    assert eks_version_problem("1.34", ON_THE_DAY, extended=True) is None
    assert eks_version_problem("1.36", ON_THE_DAY).startswith("EKS does not offer Kubernetes 1.36; allowed")
    assert eks_version_problem("1.29", ON_THE_DAY, extended=True).startswith("EKS support for 1.29 ended on 2026-03-23")


@pytest.fixture
def env_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(checks, "today", lambda: ON_THE_DAY)
    shutil.copytree(ROOT / "environments", tmp_path / "environments")
    return tmp_path / "environments"


def override(env_dir, name: str, kubernetes: dict) -> None:
    path = env_dir / f"{name}.yaml"
    path.write_text(path.read_text() + yaml.safe_dump({"kubernetes": kubernetes}))


def test_an_eks_environment_on_a_version_past_standard_support_is_a_config_error(env_dir):
    override(env_dir, "qa", {"version": "1.33"})
    with pytest.raises(ConfigError) as error:
        load_environment("qa", env_dir)
    assert str(error.value).startswith(f"{env_dir / 'qa.yaml'}: kubernetes.version = '1.33': 1.33 left EKS standard")
    assert "allowed on 2026-12-02: 1.35" in str(error.value)


def test_extended_support_is_accepted_only_when_asked_for(env_dir):
    override(env_dir, "qa", {"version": "1.34", "extended_support": True})
    assert load_environment("qa", env_dir).kubernetes.version == "1.34"


def test_the_local_cluster_is_not_held_to_the_eks_calendar(env_dir):
    override(env_dir, "dev", {"version": "1.33"})
    assert load_environment("dev", env_dir).kubernetes.version == "1.33"


def test_every_eks_environment_runs_a_version_in_standard_support_today():
    """Fails on the day the default leaves standard support (1.35: 2027-03-27): time to upgrade."""
    envs = [env for env in load_environments(ROOT / "environments") if env.on_aws]
    assert envs and {EKS_VERSIONS[env.kubernetes.version].support_on(today()) for env in envs} == {"standard"}


def test_kubernetes_schema_validation_knows_the_default_version():
    version = load_environment("qa", ROOT / "environments").kubernetes.version
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}
    assert validate_objects([service], version) == []
    assert validate_objects([{**service, "spec": {"portz": []}}], version)


@pytest.mark.parametrize(
    ("source", "target", "allowed"),
    [("1.33", "1.35", "1.34"), ("1.35", "1.36", "none yet"), ("1.34", "1.34", "1.35"), ("1.34", "1.33", "1.35")],
)
def test_an_upgrade_of_more_than_one_minor_or_to_a_version_eks_lacks_is_refused(source, target, allowed):
    prod = load_environment("prod", ROOT / "environments")
    with pytest.raises(Refused, match=f"TO={target}: .*the allowed target is {allowed}"):
        check_request(prod, source, target)
    check_request(prod, "1.34", "1.35")


def test_make_upgrade_plan_refuses_a_two_minor_jump_in_one_line_before_synthesizing():
    result = subprocess.run(
        ["make", "-s", "--no-print-directory", "upgrade-plan", "ENV=prod", "FROM=1.33", "TO=1.35"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stdout == (
        "make upgrade-plan: TO=1.35: EKS upgrades one minor version at a time; from 1.33 the "
        "allowed target is 1.34 (plan each step in turn)\n"
    )


def test_the_plan_goes_control_plane_add_ons_nodes_karpenter_charts_broker_region_by_region(synthesized):
    prod = load_environment("prod", ROOT / "environments")
    plan = eks_plan(prod, "1.34", "1.35", synthesized.outdir)
    text = "\n".join(plan)
    steps = [line.split(".", 1)[0] for line in plan if line[:1].isdigit()]
    assert steps == ["1", *["2", "3", "4", "5", "6", "7"] * 2]
    regions = [line for line in plan if line.startswith("== ")]
    assert regions == ["== eu-west-1: cluster burrow-prod", "== us-east-1: cluster burrow-prod-us-east-1"]
    assert "npx cdktf deploy prod-cluster " in text and "npx cdktf deploy prod-us-east-1-cluster " in text
    assert "for addon in vpc-cni kube-proxy coredns aws-ebs-csi-driver; do" in text
    assert "--nodegroup-name general" in text and "Karpenter replaces its nodes" in text
    crds = [line for line in plan if line.startswith("   - ") and "(" in line and ":" in line]
    charted = {line.split()[1] for line in crds}
    assert {"kube-prometheus-stack", "karpenter-crd", "velero", "aws-load-balancer-controller"} <= charted
    assert "rabbitmq" not in charted and "metrics-server" not in charted
    assert "velero backup create before-1.35 --include-namespaces burrow-prod --wait" in text


def broker_values(outdir, stack: str) -> dict:
    (release,) = [r for r in chart_releases(outdir) if r.stack == stack and r.chart == "rabbitmq"]
    merged: dict = {}
    for doc in release.values:
        merged |= doc
    return merged


@pytest.mark.parametrize("stack", ["prod-app", "prod-us-east-1-app", "preprod-app"])
def test_the_broker_restarts_one_ready_pod_at_a_time(synthesized, stack):
    """What makes the rolling restart in docs/upgrades.md quorum-safe, in the values the chart gets
    (Bitnami rabbitmq 16.0.14: templates/statefulset.yaml and pdb.yaml read exactly these)."""
    values = broker_values(synthesized.outdir, stack)
    assert values["replicaCount"] == 3
    assert values["podManagementPolicy"] == "OrderedReady"  # the chart's own advice for a clean cluster restart
    assert values["updateStrategy"] == {"type": "RollingUpdate"}  # no maxUnavailable: one pod at a time
    assert values["pdb"] == {"create": True, "maxUnavailable": 1}  # drains take one broker at a time
    assert values["readinessProbe"] == {"enabled": True}  # the next pod waits for this one to be Ready
    assert "lifecycleHooks" not in values  # the chart's preStop (its node shutdown script) stays
    assert values.get("terminationGracePeriodSeconds", 120) >= 120


def test_a_values_file_cannot_undo_the_restart_settings(tmp_path):
    assert {"podManagementPolicy", "updateStrategy", "readinessProbe", "pdb"} <= set(MANAGED_VALUES)
    (tmp_path / "values-default.yaml").write_text("podManagementPolicy: Parallel\n")
    with pytest.raises(ConfigError, match="podManagementPolicy: set by Burrow"):
        chart_values(tmp_path, "prod", MANAGED_VALUES)
