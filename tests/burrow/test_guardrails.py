"""Guardrails refuse an unsafe configuration at synth, one message per violation; waivers need reasons."""

from __future__ import annotations

import pytest
from cdktf import App, TerraformStack

from burrow import (
    Guardrails,
    PropsError,
    Tier,
    Waiver,
)
from burrow.config.loader import load_environment
from burrow.policy.facts import PolicyFacts
from burrow.policy.guardrails import RULE_IDS, RULES, refusal, violations_in
from burrow.stacks.app import AppLayer
from burrow.synthesis import stacks_of
from tests.conftest import released
from tests.support.services import ROOT
from tests.support.team import CLUSTER, team_stack


def env(name: str, **changes):
    """The environment as a deploy synthesizes it (prod with the release fixture), with `changes`."""
    (config,) = released([load_environment(name, ROOT / "environments")])
    for section, update in changes.items():
        current = getattr(config, section)
        config = config.model_copy(update={section: current.model_copy(update=update) if isinstance(update, dict) else update})
    return config


def synth_error(app: App, tmp_path) -> str | None:
    """The guardrails' report when synth is refused, else None (and the stacks were written)."""
    try:
        app.synth()
    except RuntimeError as exc:
        found = violations_in(stacks_of(app))
        assert found, f"synth failed for another reason: {exc}"
        assert all(f"guardrail violation: {finding}" in str(exc) for finding in found)
        return refusal(stacks_of(app))
    assert list((tmp_path / "stacks").glob("*/cdk.tf.json")), "synth passed but wrote no stack"
    return None


def app_layer(tmp_path, config) -> tuple[App, AppLayer]:
    app = App(outdir=str(tmp_path))
    return app, AppLayer(app, config, cluster=CLUSTER)


def violations(report: str | None) -> list[str]:
    assert report is not None, "synth should have been refused"
    return [line.strip() for line in report.splitlines()[1:-1]]


def test_shipped_prod_passes_with_its_release_and_waives_nothing(tmp_path):
    app, layer = app_layer(tmp_path, env("prod"))
    assert synth_error(app, tmp_path) is None
    assert layer.guardrails.waived == []


@pytest.mark.parametrize(
    ("rabbitmq", "rule", "advice"),
    [
        ({"replicas": 1}, "rabbitmq-replicas", "run 3 RabbitMQ replicas (replicaCount is 1)"),
        (
            {"persistence": {"enabled": False, "size": "8Gi"}},
            "rabbitmq-persistence",
            "turn on rabbitmq.persistence.enabled (persistence.enabled is false)",
        ),
        ({"anti_affinity": "soft"}, "rabbitmq-anti-affinity", "set rabbitmq.anti_affinity: hard (podAntiAffinityPreset is soft)"),
    ],
)
def test_production_broker_rules(tmp_path, rabbitmq, rule, advice):
    config = env("prod")
    update = {k: (config.rabbitmq.persistence.model_copy(update=v) if k == "persistence" else v) for k, v in rabbitmq.items()}
    app, _ = app_layer(tmp_path, config.model_copy(update={"rabbitmq": config.rabbitmq.model_copy(update=update)}))
    assert violations(synth_error(app, tmp_path)) == [f"prod-app: prod-app/rabbitmq: [{rule}] {advice}"]


def test_the_documented_refusal_is_what_synth_prints(tmp_path):
    """docs/security.md quotes a refused synth; it must be the report the code prints, word for word."""
    config = env("prod")
    app, _ = app_layer(tmp_path, config.model_copy(update={"rabbitmq": config.rabbitmq.model_copy(update={"replicas": 1})}))
    page = (ROOT / "docs" / "security.md").read_text()
    quoted = page.split("exit status 2:\n\n```\n", 1)[1].split("```", 1)[0]
    assert quoted == f"burrow: {synth_error(app, tmp_path)}\n"


def test_image_digest_rule_covers_the_services_and_the_broker(tmp_path):
    app, _ = app_layer(tmp_path, load_environment("prod", ROOT / "environments"))
    found = violations(synth_error(app, tmp_path))
    assert sorted(line.split(": [")[0] for line in found) == [
        "prod-app: prod-app/consumer", "prod-app: prod-app/producer", "prod-app: prod-app/rabbitmq"]
    assert all("[image-digest]" in line for line in found)
    assert any("image: pin image docker.io/bitnamilegacy/rabbitmq:4.1.3-debian-12-r1 by digest" in line for line in found)


def test_image_digest_rule_covers_a_brokers_sidecars():
    pinned = "docker.io/bitnamilegacy/rabbitmq@sha256:" + "0" * 64
    image = {"registry": "docker.io", "repository": "bitnamilegacy/rabbitmq", "tag": "4", "digest": "sha256:" + "0" * 64}
    facts = PolicyFacts("broker", chart_values={"image": image, "sidecars": [{"name": "keeper", "image": pinned},
                                                                             {"name": "other", "image": "busybox:1"}]})
    (image_digest,) = [rule for rule in RULES if rule.id == "image-digest" and rule.applies_to == "broker"]
    assert image_digest.check(facts) == [
        "sidecars other: pin image busybox:1 by digest (image.digest)"]


def test_staging_needs_two_replicas_and_a_pdb(tmp_path):
    config = env("qa")
    consumer = config.apps.consumer.model_copy(update={"replicas": 1})
    app, _ = app_layer(tmp_path, config.model_copy(update={"apps": config.apps.model_copy(update={"consumer": consumer})}))
    assert violations(synth_error(app, tmp_path)) == [
        "qa-app: qa-app/consumer: [workload-replicas] run at least 2 replicas (replicas is 1)",
        "qa-app: qa-app/consumer: [workload-pdb] add a PodDisruptionBudget (replicas >= 2 creates one)",
    ]


def test_another_teams_stack_gets_production_checks_by_default(tmp_path):
    app, _ = team_stack(tmp_path, tier=None)
    rules = {line.split("[")[1].split("]")[0] for line in violations(synth_error(app, tmp_path))}
    assert rules == {"image-digest", "rabbitmq-replicas", "rabbitmq-anti-affinity"}  # persistence is on by default


@pytest.mark.parametrize(
    ("edit", "rule"),
    [
        (lambda c, w: c["resources"].pop("limits"), "workload-resources"),
        (lambda c, w: c.pop("livenessProbe"), "workload-probes"),
        (lambda c, w: c["securityContext"].update(privileged=True), "workload-security"),
        (lambda c, w: c.update(image="r/w:latest"), "image-tag"),
        (lambda c, w: setattr(w, "objects", tuple(o for o in w.objects if o["kind"] != "NetworkPolicy")), "workload-network-policy"),
    ],
)
def test_edits_through_escape_hatches_are_still_checked(tmp_path, edit, rule):
    app, worker = team_stack(tmp_path, tier=Tier.STAGING)
    edit(worker.deployment["spec"]["template"]["spec"]["containers"][0], worker)
    found = violations(synth_error(app, tmp_path))
    assert any(f"team/worker: [{rule}]" in line for line in found), found


def test_namespace_without_default_deny_is_refused_from_staging(tmp_path):
    app, _ = team_stack(tmp_path, tier=Tier.STAGING, default_deny=False)
    found = violations(synth_error(app, tmp_path))
    assert "team: team/ns: [namespace-default-deny] keep the namespace's default-deny NetworkPolicy (default_deny=True)" in found


def test_development_tier_allows_a_single_unpersisted_broker(tmp_path):
    app, _ = team_stack(tmp_path, tier=Tier.DEVELOPMENT)
    assert synth_error(app, tmp_path) is None


def test_a_waiver_needs_a_known_rule_a_construct_of_the_stack_and_a_reason():
    stack = TerraformStack(App(), "team")
    with pytest.raises(PropsError, match="known rules: workload-resources"):
        Guardrails.configure(stack, Tier.PRODUCTION, [Waiver(rule="no-such-rule", path="team/mq", reason="x" * 30)])
    for path in ("team", "other/mq"):  # the whole stack, another stack
        with pytest.raises(PropsError, match="a waiver names one construct of this stack"):
            Guardrails.configure(stack, Tier.PRODUCTION, [Waiver(rule="image-digest", path=path, reason="x" * 30)])
    with pytest.raises(PropsError, match="^Waiver: reason='because' is invalid: String should have at least 20 characters$"):
        Waiver(rule="image-digest", path="team/mq", reason="because")
    waiver = Waiver(rule="image-digest", path="team/mq", reason="x" * 30)
    assert Guardrails.configure(stack, Tier.PRODUCTION, [waiver]).waivers == (waiver,)


def test_every_rule_is_documented():
    page = (ROOT / "docs" / "security.md").read_text()
    assert [rule for rule in RULE_IDS if f"`{rule}`" not in page] == []


def test_a_privileged_replacement_of_the_deployment_is_refused(tmp_path):
    """Swapping the delivered Deployment for a privileged copy through `worker.objects`."""
    import copy

    app, worker = team_stack(tmp_path, tier=Tier.STAGING)
    replacement = copy.deepcopy(worker.deployment)
    container = replacement["spec"]["template"]["spec"]["containers"][0]
    container["securityContext"] = {"privileged": True, "allowPrivilegeEscalation": True}
    worker.objects = tuple(replacement if o is worker.deployment else o for o in worker.objects)
    found = violations(synth_error(app, tmp_path))
    assert "team: team/worker: [workload-security] container consumer: must not be privileged" in found
    assert "team: team/worker: [workload-security] container consumer: set allowPrivilegeEscalation: false" in found


def test_an_in_place_replica_edit_is_refused(tmp_path):
    app, worker = team_stack(tmp_path, tier=Tier.STAGING)
    worker.deployment["spec"]["replicas"] = 1
    assert violations(synth_error(app, tmp_path)) == [
        "team: team/worker: [workload-replicas] run at least 2 replicas (replicas is 1)"
    ]


def test_a_broker_values_edit_through_the_release_is_refused(tmp_path):
    """The broker's rules read the values its release renders with, not its props."""
    app, _ = team_stack(tmp_path, tier=None)
    stack = stacks_of(app)[0]
    broker = stack.node.find_child("mq")
    broker.release.values = [*broker.release.values_input, "replicaCount: 3\npodAntiAffinityPreset: hard\n"]
    rules = {line.split("[")[1].split("]")[0] for line in violations(synth_error(app, tmp_path))}
    assert rules == {"image-digest"}


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda ingress: ingress["spec"]["rules"][0]["http"]["paths"][0].update(path="/metrics"),
         "route only /publish, /health with pathType Exact, not '/metrics' (Exact)"),
        (lambda ingress: ingress["spec"]["rules"][0]["http"]["paths"][1].update(pathType="Prefix"),
         "not '/health' (Prefix)"),
        (lambda ingress: ingress["spec"].pop("tls"), "serve HTTPS (spec.tls) and redirect HTTP to it"),
        (lambda ingress: ingress["metadata"]["annotations"].pop("alb.ingress.kubernetes.io/ssl-redirect"),
         "serve HTTPS (spec.tls) and redirect HTTP to it (ssl-redirect: '443')"),
        (lambda ingress: ingress["spec"].update(defaultBackend={"service": {"name": "consumer", "port": {"number": 5000}}}),
         "remove spec.defaultBackend"),
    ],
)
def test_a_public_ingress_exposes_only_publish_and_health_over_https(tmp_path, edit, expected):
    """Edited through its escape hatch to expose more (or drop TLS or the HTTP-to-HTTPS redirect), the
    producer's Ingress makes a staging stack refuse to synthesize; as Burrow builds it, it synthesizes."""

    def staging_stack_with_public_ingress(outdir):
        from burrow import PublicIngress

        app, worker = team_stack(outdir, tier=Tier.STAGING)
        stack = TerraformStack.of(worker)
        edge = {"cluster_name": "c", "region": "eu-west-1", "vpc_id": "vpc-1", "load_balancer_role_arn": "arn:r",
                "dns_role_arn": "arn:d", "zone_id": "Z1", "zone_name": "example.com", "host": "events.example.com",
                "region_host": "eu-west-1.events.example.com"}
        public = PublicIngress(stack, "public", {"edge": edge, "load_balancer_cidrs": ["10.0.0.0/24"]},
                               namespace=stack.node.find_child("ns"), producer=worker)
        return app, public

    as_built, _ = staging_stack_with_public_ingress(tmp_path / "as-built")
    assert synth_error(as_built, tmp_path / "as-built") is None
    app, public = staging_stack_with_public_ingress(tmp_path / "edited")
    edit(public.objects[0])
    found = violations(synth_error(app, tmp_path / "edited"))
    assert any("team/public: [public-ingress] Ingress consumer: " in line and expected in line for line in found), found


BUSYBOX = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "box", "namespace": "team"},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "box"}},
             "template": {"metadata": {"labels": {"app": "box"}},
                          "spec": {"containers": [{"name": "box", "image": "busybox:latest",
                                                   "securityContext": {"privileged": True}}]}}},
}


def staging_stack(tmp_path) -> tuple[App, TerraformStack]:
    """A stack of a team's own: providers, tier staging, and nothing else yet."""
    app = App(outdir=str(tmp_path))
    stack = TerraformStack(app, "team")
    CLUSTER.configure_providers(stack)
    Guardrails.configure(stack, Tier.STAGING)
    return app, stack


def refused_by_synthesize(app: App, capsys) -> list[str]:
    """`burrow.synthesize(app)` refuses: exit status 2, Burrow's report on stderr, no traceback."""
    from burrow import synthesize

    with pytest.raises(SystemExit) as exit_:
        synthesize(app)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "JavaScriptError" not in err
    lines = err.strip().splitlines()
    assert lines[0] == "burrow: synth refused by guardrails:"
    return [line.strip() for line in lines[1:-1]]


def test_a_privileged_raw_deployment_through_kubernetes_objects_is_refused_at_staging(tmp_path, capsys):
    """The issue's case: `busybox:latest`, privileged, delivered through the public `KubernetesObjects`."""
    from burrow import KubernetesObjects

    app, stack = staging_stack(tmp_path)
    KubernetesObjects(stack, "raw", {"release_name": "box", "namespace": "team", "objects": [BUSYBOX]})
    found = refused_by_synthesize(app, capsys)
    assert "team: team/raw/release: [workload-security] container box: must not be privileged" in found
    assert "team: team/raw/release: [image-tag] container box: image busybox:latest uses 'latest'; pin a version or digest" in found
    assert "team: team/raw/release: [workload-pdb] add a PodDisruptionBudget (replicas >= 2 creates one)" in found
    assert not (tmp_path / "stacks" / "team" / "cdk.tf.json").exists()


def test_a_raw_helm_release_and_manifest_no_burrow_construct_made_are_policed(tmp_path, capsys):
    """Provider resources a stack adds itself, read through their type and attributes (overrides too)."""
    from cdktf import TerraformResource

    app, stack = staging_stack(tmp_path)
    chart = TerraformResource(stack, "chart", terraform_resource_type="helm_release")
    chart.add_override("name", "tool")
    chart.add_override("chart", "oci://example.com/charts/tool")
    chart.add_override("values", ["image:\n  repository: example/tool\n  tag: latest\n"])
    chart.add_override("set", [{"name": "controller.securityContext.privileged", "value": "true"}])
    manifest = TerraformResource(stack, "manifest", terraform_resource_type="kubernetes_manifest")
    manifest.add_override("manifest", {**BUSYBOX, "kind": "StatefulSet"})
    found = refused_by_synthesize(app, capsys)
    assert "team: team/chart: [image-tag] image: image example/tool:latest uses 'latest'; pin a version or digest" in found
    assert ("team: team/chart: [workload-security] controller.securityContext.privileged: true breaks the restricted "
            "Pod Security Standard; set it false") in found
    assert "team: team/manifest: [workload-security] container box: must not be privileged" in found


def test_a_stack_without_burrow_constructs_is_policed_by_synthesize(tmp_path, capsys):
    """No Burrow construct, no tier: `synthesize` still puts the stack under (production) guardrails."""
    from cdktf import TerraformResource

    app = App(outdir=str(tmp_path))
    stack = TerraformStack(app, "bare")
    manifest = TerraformResource(stack, "pod", terraform_resource_type="kubernetes_manifest")
    manifest.add_override("manifest", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                       "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    found = refused_by_synthesize(app, capsys)
    assert "bare: bare/pod: [image-digest] container c: pin image busybox by digest (image.digest: sha256:…)" in found


def test_a_third_party_charts_values_are_policed(tmp_path):
    """An add-on's chart values (a chart Burrow did not write) under the same rules."""
    from burrow import HelmAddOn

    app, stack = staging_stack(tmp_path)
    addon = HelmAddOn(name="tool", repository="https://example.com/charts", chart="tool", version="1.0.0",
                      namespace="tools", values={"sidecars": [{"name": "agent", "image": "example/agent"}],
                                                 "hostNetwork": True})
    addon.deploy(stack, CLUSTER)
    assert violations(synth_error(app, tmp_path)) == [
        "team: team/tool/release: [image-tag] sidecars[0].image: image example/agent uses 'latest'; pin a version or digest",
        "team: team/tool/release: [workload-security] hostNetwork: true breaks the restricted Pod Security Standard; "
        "set it false",
    ]


def test_a_waiver_covers_one_rule_on_one_construct_and_synthesize_reports_it(tmp_path, capsys):
    import json

    from burrow import KubernetesObjects, synthesize

    app, stack = staging_stack(tmp_path)
    reason = "a node debugging tool, reviewed by the platform team"
    Guardrails.configure(stack, Tier.DEVELOPMENT, [Waiver(rule="workload-security", path="team/debug", reason=reason)])
    debug = {**BUSYBOX, "spec": {**BUSYBOX["spec"], "template": {**BUSYBOX["spec"]["template"], "spec": {"containers": [
        {"name": "box", "image": "busybox:1.37", "securityContext": {"privileged": True},
         "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}, "limits": {"cpu": "1m", "memory": "1Mi"}}}]}}}}
    KubernetesObjects(stack, "debug", {"release_name": "debug", "namespace": "team", "objects": [debug]})
    KubernetesObjects(stack, "other", {"release_name": "other", "namespace": "team", "objects": [debug]})
    found = refused_by_synthesize(app, capsys)
    assert found and all(line.startswith("team: team/other/release: [workload-security]") for line in found), found

    app, stack = staging_stack(tmp_path / "waived")
    Guardrails.configure(stack, Tier.DEVELOPMENT, [Waiver(rule="workload-security", path="team/debug", reason=reason)])
    KubernetesObjects(stack, "debug", {"release_name": "debug", "namespace": "team", "objects": [debug]})
    synthesize(app)
    out = capsys.readouterr().out.splitlines()
    assert f"WAIVED team: team/debug/release: [workload-security] container box: must not be privileged -- reason: {reason}" in out
    recorded = json.loads((tmp_path / "waived" / "stacks" / "team" / "cdk.tf.json").read_text())["//"]
    assert recorded["burrow_guardrail_waivers"] == [{"rule": "workload-security", "path": "team/debug", "reason": reason}]


def test_a_waiver_whose_path_names_no_construct_is_refused(tmp_path):
    app, stack = staging_stack(tmp_path)
    Guardrails.configure(stack, Tier.DEVELOPMENT, [Waiver(rule="image-tag", path="team/typo", reason="x" * 30)])
    assert violations(synth_error(app, tmp_path)) == [
        "team: team/typo: [waiver] no construct at this path; waive image-tag on a path a refusal names"]


def test_a_teams_own_rule_pack_runs_beside_burrows(tmp_path):
    from burrow import KubernetesObjects, Rule

    def owner(facts: PolicyFacts) -> list[str]:
        return [f"{o['metadata']['name']}: add team.example/owner" for o in facts.objects
                if "team.example/owner" not in o["metadata"].get("labels", {})]

    app, stack = staging_stack(tmp_path)
    rule = Rule("owner-label", (Tier.DEVELOPMENT,), "workload", "objects name their owner", owner)
    Guardrails.configure(stack, Tier.DEVELOPMENT, [Waiver(rule="workload-security", path="team/raw", reason="x" * 30)],
                         rules=[rule])
    sized = {"requests": {"cpu": "1m", "memory": "1Mi"}, "limits": {"cpu": "1m", "memory": "1Mi"}}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "team"},
           "spec": {"containers": [{"name": "c", "image": "busybox:1.37", "resources": sized}]}}
    KubernetesObjects(stack, "raw", {"release_name": "raw", "namespace": "team", "objects": [pod]})
    assert violations(synth_error(app, tmp_path)) == ["team: team/raw/release: [owner-label] p: add team.example/owner"]


def test_refusals_speak_in_props_for_a_props_stack_and_in_keys_for_an_environment(tmp_path):
    """The same broker finding: `anti_affinity` (the prop) in a team's stack, `rabbitmq.anti_affinity` (the
    environment file's key) in an environment's; each report ends with how to fix or waive in its terms."""
    from burrow.policy.guardrails import PROPS
    from burrow.stacks.base import ENVIRONMENT_FILE

    app, _ = team_stack(tmp_path / "team", tier=None)
    report = synth_error(app, tmp_path / "team")
    assert "  team: team/mq: [rabbitmq-anti-affinity] set anti_affinity: hard (podAntiAffinityPreset is soft)\n" in report
    assert "rabbitmq." not in report and "guardrails.waivers" not in report
    assert report.endswith(PROPS.advice)
    config = env("prod")
    app, _ = app_layer(tmp_path / "env", config.model_copy(update={"rabbitmq": config.rabbitmq.model_copy(
        update={"anti_affinity": "soft"})}))
    report = synth_error(app, tmp_path / "env")
    assert "[rabbitmq-anti-affinity] set rabbitmq.anti_affinity: hard" in report
    assert report.endswith(ENVIRONMENT_FILE.advice)


def test_an_environment_files_waiver_is_recorded_in_every_stack_it_names(tmp_path):
    """`app/rabbitmq` waives the broker of every region's app stack; each records it in its own JSON."""
    import json

    from burrow.config.schema import WaiverConfig
    from burrow.environment import build_environment

    reason = "hard anti-affinity waits for the third zone's nodes"
    config = env("prod")
    config = config.model_copy(update={
        "rabbitmq": config.rabbitmq.model_copy(update={"anti_affinity": "soft"}),
        "guardrails": config.guardrails.model_copy(update={"waivers": [
            WaiverConfig(rule="rabbitmq-anti-affinity", path="app/rabbitmq", reason=reason)]})})
    app = App(outdir=str(tmp_path))
    build_environment(app, config, helm_dir=ROOT / "helm")
    assert synth_error(app, tmp_path) is None
    recorded = {path.parent.name: json.loads(path.read_text())["//"].get("burrow_guardrail_waivers")
                for path in (tmp_path / "stacks").glob("*/cdk.tf.json")}
    assert {name: waivers for name, waivers in recorded.items() if waivers} == {
        name: [{"rule": "rabbitmq-anti-affinity", "path": f"{name}/rabbitmq", "reason": reason}]
        for name in ("prod-app", "prod-us-east-1-app")}


def test_the_documented_environment_waiver_is_valid():
    import yaml

    from burrow.config.schema import GuardrailsConfig

    page = (ROOT / "docs" / "security.md").read_text()
    block = page.split("```yaml\nguardrails:", 1)[1].split("```", 1)[0]
    (waiver,) = GuardrailsConfig.model_validate(yaml.safe_load("guardrails:" + block)["guardrails"]).waivers
    assert waiver.path == "addons/karpenter/node-pool"  # the construct test_day2's waiver test finds


def test_a_deployment_slipped_under_a_broker_is_still_policed_as_a_workload(tmp_path):
    """A `Policed` construct answers only for what it reports: the broker for its chart, not for a
    Deployment added through its objects' escape hatch."""
    app, _ = team_stack(tmp_path, tier=Tier.DEVELOPMENT)
    broker = stacks_of(app)[0].node.find_child("mq")
    broker.objects = (*broker.objects, BUSYBOX)
    found = violations(synth_error(app, tmp_path))
    assert f"team: {broker.delivery.release.node.path}: [workload-security] container box: must not be privileged" in found
    assert {line.split("[")[1].split("]")[0] for line in found} == {"workload-resources", "workload-security", "image-tag"}


def test_a_federation_service_edited_back_to_plain_amqp_is_refused(tmp_path):
    """`rabbitmq-exposed-tls` on a federated broker: its load balancer carries 5671 and passes; the
    same Service edited (escape hatch) to carry 5672, as before federation moved to TLS, is refused."""
    from burrow.app.broker_users import ROLES
    from burrow.app.federation import BrokerFederation, FederationUpstream
    from burrow.app.namespace import AppNamespace
    from burrow.app.rabbitmq import RabbitMqBroker
    from tests.support.team import CLUSTER, SIZE

    def federated(outdir):
        app = App(outdir=str(outdir))
        stack = TerraformStack(app, "team")
        CLUSTER.configure_providers(stack)
        Guardrails.configure(stack, Tier.DEVELOPMENT)
        namespace = AppNamespace(stack, "ns", {"name": "team"})
        federation = BrokerFederation(region="eu-west-1", broker_host="mq.eu-west-1.example.com",
                                      upstreams=[FederationUpstream(region="us-east-1", host="mq.us-east-1.example.com")],
                                      load_balancer_cidrs=["10.0.0.0/20"], peer_cidrs=["10.1.0.0/20"],
                                      credentials_key="t/rabbitmq", federation_key="t/federation")
        broker = RabbitMqBroker(stack, "mq", {"image": {"registry": "r", "repository": "rabbitmq", "tag": "4"},
                                              "resources": SIZE, "federation": federation, "credentials_key": "t/rabbitmq",
                                              "user_keys": {role: f"t/{role}" for role in ROLES}}, namespace=namespace)
        return app, broker

    app, _ = federated(tmp_path / "tls")
    assert synth_error(app, tmp_path / "tls") is None
    app, broker = federated(tmp_path / "plain")
    [lb] = [o for o in broker.objects if o["kind"] == "Service"]
    lb["spec"]["ports"] = [{"name": "amqp", "protocol": "TCP", "port": 5672, "targetPort": 5672}]
    assert violations(synth_error(app, tmp_path / "plain")) == [
        "team: team/mq: [rabbitmq-exposed-tls] Service rabbitmq-federation exposes plain AMQP (5672) beyond the cluster: "
        "expose the broker's TLS port only"]
