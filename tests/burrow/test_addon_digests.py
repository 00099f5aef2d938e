"""Images by digest, everywhere in production: every image of every add-on chart Burrow installs is
listed in its pin (`burrow.pins`), resolved by `make release`, set in the chart's values by the
add-on, and required by the guardrail `image-digest`; other tiers keep the charts' tags."""

from __future__ import annotations

import pytest
import yaml
from cdktf import App, TerraformStack

from burrow import Guardrails, PropsError, Tier, Waiver
from burrow.addons.keda import keda
from burrow.addons.metrics_server import metrics_server
from burrow.config.loader import load_environment
from burrow.config.release import addon_charts, apply_release, load_release, third_party_images
from burrow.errors import ConfigError
from burrow.k8s.release import terraform_unescape
from burrow.pins import PINS, value_at
from burrow_tools.charts import digest_problems, running_images
from tests.burrow.test_config import env_dir, error_for, write  # noqa: F401 - env_dir is a fixture
from tests.burrow.test_guardrails import refused_by_synthesize
from tests.conftest import ENVIRONMENTS, RELEASE_FIXTURE
from tests.support.services import ROOT
from tests.support.team import CLUSTER

DIGEST = "sha256:" + "ab" * 32
#: The environments a deploy synthesizes with a release (production tier), by their add-ons stacks.
RELEASED_STACKS = {"prod": ("prod-addons", "prod-us-east-1-addons"), "preprod": ("preprod-addons",)}


def values_of(release: dict) -> dict:
    merged: dict = {}
    for doc in release.get("values") or []:
        merged.update(yaml.safe_load(terraform_unescape(doc)))
    return merged


def chart_releases(synthesized, stack: str) -> dict[str, dict]:
    """The stack's third-party chart releases whose pin lists images, by chart."""
    found = synthesized.stack(stack).get("resource", {}).get("helm_release", {}).values()
    return {r["chart"]: r for r in found if r.get("repository") and r["chart"] in PINS and PINS[r["chart"]].images}


@pytest.mark.parametrize("env_name", sorted(RELEASED_STACKS))
def test_production_pins_every_image_of_every_addon_chart_by_the_releases_digest(synthesized, env_name):
    env = load_environment(env_name, ROOT / "environments")
    third_party = load_release(RELEASE_FIXTURE).third_party
    for stack in RELEASED_STACKS[env_name]:
        releases = chart_releases(synthesized, stack)
        assert set(releases) == {pin.chart for pin in addon_charts(env) if pin.images}
        for chart, release in releases.items():
            values = values_of(release)
            for image in PINS[chart].images:
                digest = third_party[image.reference]
                for path in image.values:
                    assert value_at(values, path) == image.value(digest), f"{stack}: {chart} {image.name} at {path}"


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_a_release_covers_exactly_the_addon_charts_the_environment_installs(synthesized, env_name):
    """`third_party_images` decides from the configuration alone what the add-ons stacks install."""
    env = load_environment(env_name, ROOT / "environments")
    stacks = [name for name in synthesized.stacks if name.startswith(f"{env_name}-") and name.endswith("-addons")]
    for stack in stacks:
        assert set(chart_releases(synthesized, stack)) == {pin.chart for pin in addon_charts(env) if pin.images}, stack
    assert {image.reference for pin in addon_charts(env) for image in pin.images} <= set(third_party_images(env))


def test_a_release_missing_one_addon_images_digest_is_refused_naming_it():
    release = load_release(RELEASE_FIXTURE)
    grafana = "docker.io/grafana/grafana:13.2.0"
    assert grafana in release.third_party
    partial = release.model_copy(update={"third_party": {k: v for k, v in release.third_party.items() if k != grafana}})
    with pytest.raises(ConfigError) as refused:
        apply_release(load_environment("prod", ROOT / "environments"), partial)
    assert str(refused.value) == (
        f"prod: the release file has no third_party digest for {grafana} (kube-prometheus-stack's grafana): "
        "make release resolves one for every image the environments deploy by tag")


def test_qa_synthesizes_with_the_charts_tags_and_a_release_pins_its_addons_too(synthesized):
    """Below production nothing changes without a release; a deploy with one pins the add-ons as it
    pins the services (built once, promoted unchanged)."""
    for name in ("dev", "qa", "uat"):
        for stack in (s for s in synthesized.stacks if s.startswith(f"{name}-") and s.endswith("-addons")):
            for chart, release in chart_releases(synthesized, stack).items():
                values = values_of(release)
                pinned = [path for image in PINS[chart].images for path in image.values
                          if not image.unpinned(values)]
                assert not pinned, f"{stack}: {chart} pins {pinned} without a release"
    qa = load_environment("qa", ROOT / "environments")
    fixture = load_release(RELEASE_FIXTURE)
    release = fixture.model_copy(update={"third_party": dict.fromkeys(third_party_images(qa), DIGEST)})
    pinned = apply_release(qa, release).addons.image_digests
    assert pinned["keda"] == {"operator": DIGEST, "metrics-apiserver": DIGEST, "admission-webhooks": DIGEST}
    assert set(pinned) == {pin.chart for pin in addon_charts(qa) if pin.images}
    assert apply_release(qa, fixture.model_copy(update={"third_party": {}})).addons.image_digests == {}


def production_stack(tmp_path, waivers=()) -> tuple[App, TerraformStack]:
    app = App(outdir=str(tmp_path))
    stack = TerraformStack(app, "team")
    CLUSTER.configure_providers(stack)
    Guardrails.configure(stack, Tier.PRODUCTION, waivers)
    return app, stack


def test_the_digest_rule_refuses_an_addon_release_without_its_images_digests(tmp_path, capsys):
    app, stack = production_stack(tmp_path)
    metrics_server().deploy(stack, CLUSTER)
    keda(digests={"operator": DIGEST, "metrics-apiserver": DIGEST}).deploy(stack, CLUSTER)
    assert refused_by_synthesize(app, capsys) == [
        "team: team/metrics-server/release: [image-digest] release metrics-server (chart metrics-server): pin image "
        "registry.k8s.io/metrics-server/metrics-server:v0.8.1 by digest at image.tag (digests, image 'metrics-server')",
        "team: team/keda/release: [image-digest] release keda (chart keda): pin image "
        "ghcr.io/kedacore/keda-admission-webhooks:2.20.2 by digest at image.webhooks.tag (digests, image 'admission-webhooks')",
    ]


def test_an_addon_with_every_digest_passes_and_a_waiver_lets_one_without_through(tmp_path, capsys):
    from burrow import synthesize

    app, stack = production_stack(tmp_path / "pinned")
    metrics_server({"metrics-server": DIGEST}).deploy(stack, CLUSTER)
    synthesize(app)

    reason = "metrics-server follows its chart's tag until the next release resolves it"
    app, stack = production_stack(tmp_path / "waived", [Waiver(rule="image-digest", path="team/metrics-server", reason=reason)])
    metrics_server().deploy(stack, CLUSTER)
    synthesize(app)
    assert (f"WAIVED team: team/metrics-server/release: [image-digest] release metrics-server (chart metrics-server): "
            f"pin image registry.k8s.io/metrics-server/metrics-server:v0.8.1 by digest at image.tag (digests, image "
            f"'metrics-server') -- reason: {reason}") in capsys.readouterr().out.splitlines()


def test_a_prod_environment_file_names_the_release_file_in_its_refusal():
    from burrow.stacks.base import ENVIRONMENT_FILE

    assert ENVIRONMENT_FILE.settings["chart"]["digests"].startswith("a release file's `third_party` entry")


def test_a_digest_for_an_image_the_chart_does_not_deploy_is_a_one_line_error(tmp_path):
    _, stack = production_stack(tmp_path)
    with pytest.raises(PropsError) as refused:
        metrics_server({"addon-resizer": DIGEST}).deploy(stack, CLUSTER)
    assert str(refused.value) == (
        "team/metrics-server: digests={'addon-resizer': '" + DIGEST + "'} is invalid: chart metrics-server deploys no "
        "image named addon-resizer (its images: metrics-server)")


def test_an_environment_files_digest_for_an_unknown_image_is_refused(env_dir):  # noqa: F811 - a fixture
    write(env_dir, "qa", (ROOT / "environments" / "qa.yaml").read_text()
          + f"addons:\n  image_digests:\n    keda: {{operator: '{DIGEST}', dashboard: '{DIGEST}'}}\n")
    error = error_for(env_dir, "qa")
    assert "addons.image_digests" in error and "keda: no image named dashboard; its images: operator, " in error


def test_every_pins_images_have_unique_names_and_a_fixed_tag():
    for pin in PINS.values():
        names = [image.name for image in pin.images]
        assert len(names) == len(set(names)), pin.chart
        for image in pin.images:
            assert ":" in image.reference.rsplit("/", 1)[1] and "@" not in image.reference, (pin.chart, image.name)


def test_verify_charts_finds_every_running_image_and_refuses_one_by_tag():
    pinned = "quay.io/prometheus/prometheus:v3.14.0@" + DIGEST
    objects = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "operator", "namespace": "monitoring"},
         "spec": {"template": {"spec": {
             "initContainers": [{"name": "init", "image": "busybox:1.37"}],
             "containers": [{"name": "operator", "image": f"quay.io/prometheus-operator/prometheus-operator:v0.93.1@{DIGEST}",
                             "args": ["--prometheus-config-reloader=quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1"]}]}}}},
        {"apiVersion": "monitoring.coreos.com/v1", "kind": "Prometheus", "metadata": {"name": "p", "namespace": "monitoring"},
         "spec": {"image": pinned}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "monitoring"}},
    ]
    images = running_images(objects)
    assert [image for _, image in images] == [
        "busybox:1.37", f"quay.io/prometheus-operator/prometheus-operator:v0.93.1@{DIGEST}",
        "quay.io/prometheus-operator/prometheus-config-reloader:v0.93.1", pinned]
    problems = digest_problems(images)
    assert [p.split(": image ")[0] for p in problems] == [
        "Deployment/monitoring/operator: initContainers init",
        "Deployment/monitoring/operator: operator --prometheus-config-reloader="]


def test_make_release_resolves_every_addon_image_and_prod_deploys_with_what_it_wrote(tmp_path, monkeypatch):
    """`make release` (CI: `docker buildx imagetools inspect` per reference, stubbed here) records a
    digest for every image every environment deploys by tag, the add-ons' included."""
    from burrow_tools.delivery import release as make_release

    asked: list[str] = []
    monkeypatch.setattr(make_release, "resolve", lambda reference: asked.append(reference) or DIGEST)
    recorded = make_release.record("123.dkr.ecr.eu-west-1.amazonaws.com", "abc123", tmp_path / "release.json",
                                   ROOT / "environments")
    prod = load_environment("prod", ROOT / "environments")
    assert {"docker.io/grafana/grafana:13.2.0", "ghcr.io/fluxcd/source-controller:v1.8.2",
            "docker.io/velero/velero:v1.17.1"} <= set(recorded.third_party)
    assert set(third_party_images(prod)) <= set(recorded.third_party) <= set(asked)
    pinned = apply_release(prod, load_release(tmp_path / "release.json")).addons.image_digests
    assert pinned["velero"] == {"velero": DIGEST, "plugin-for-aws": DIGEST}


def test_velero_installs_without_its_crd_hook_whose_kubectl_image_does_not_exist(synthesized):
    """Velero's chart upgrades its CRDs in a pre-install/pre-upgrade hook Job running
    docker.io/bitnamilegacy/kubectl:<cluster minor>: that frozen repository has no tag for the
    Kubernetes Burrow runs, so the hook, and with it the first install, would fail. The hook is off."""
    from burrow.pins import VELERO

    releases = chart_releases(synthesized, "prod-addons")
    assert values_of(releases["velero"])["upgradeCRDs"] is False
    assert not [image for image in VELERO.images if "kubectl" in image.reference]
    assert "Burrow turns the chart's CRD upgrade hook" in VELERO.crds


@pytest.mark.parametrize("failure", ["missing", "refused"])
def test_make_release_says_in_one_line_which_image_docker_could_not_resolve(monkeypatch, failure):
    """Without docker, or when a registry refuses, `make release` names the image, not a traceback."""
    import subprocess

    from burrow.errors import BurrowError
    from burrow_tools.delivery import release as make_release

    def run(argv, **_kwargs):
        if failure == "missing":
            raise FileNotFoundError(argv[0])
        raise subprocess.CalledProcessError(1, argv, stderr="ERROR: pull access denied\n")

    monkeypatch.setattr(make_release.subprocess, "run", run)
    with pytest.raises(BurrowError) as raised:
        make_release.resolve("docker.io/grafana/grafana:13.2.0")
    line = str(raised.value)
    assert "\n" not in line and "cannot resolve docker.io/grafana/grafana:13.2.0" in line
    assert ("not installed" in line) if failure == "missing" else ("exited 1: ERROR: pull access denied" in line)
