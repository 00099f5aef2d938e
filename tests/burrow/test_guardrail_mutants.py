"""Guardrail rules stated one by one, on the facts a construct delivers. Each closes a gap that
mutation testing (`make mutation`, docs/testing.md) found: a change to the rule no other test saw."""

from __future__ import annotations

from burrow import Tier, Waiver
from burrow.policy.facts import PolicyFacts, object_facts
from burrow.policy.guardrails import RULES, Finding


def check(rule_id: str, subject: str, objects=(), values=None, tier: Tier = Tier.PRODUCTION) -> list[str]:
    """What Burrow's rule `rule_id` asks to change in these facts of `subject`, in `tier`."""
    facts = PolicyFacts(subject, tuple(objects), chart_values=values or {})
    rules = [rule for rule in RULES if rule.id == rule_id and rule.applies(facts, tier)]
    return [message for rule in rules for message in rule.check(facts)]


def deployment(replicas: int | None = 2, **container) -> dict:
    spec = {
        "selector": {"matchLabels": {"app": "a"}},
        "template": {
            "metadata": {"labels": {"app": "a"}},
            "spec": {"containers": [{"name": "a", "image": "r/a:1", **container}]},
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}, "spec": spec}


# --- waivers --------------------------------------------------------------------------------------


def test_a_waiver_covers_its_own_rule_only():
    waiver = Waiver(rule="image-digest", path="team/worker", reason="x" * 30)
    assert waiver.covers(Finding("team", "team/worker", "image-digest", "m"))
    for other in ("image-tag", "workload-security", "image-d", "a-rule"):
        assert not waiver.covers(Finding("team", "team/worker", other, "m")), other


def test_a_waiver_covers_its_construct_and_what_lies_under_it_only():
    waiver = Waiver(rule="image-tag", path="team/worker", reason="x" * 30)
    assert [
        path
        for path in ("team/worker", "team/worker/release", "team/mq", "team/work", "team/workers", "team")
        if waiver.covers(Finding("team", path, "image-tag", "m"))
    ] == ["team/worker", "team/worker/release"]


def test_a_waiver_names_a_rule_and_a_path():
    import pytest

    from burrow import PropsError

    for field in ("rule", "path"):
        given = {"rule": "image-tag", "path": "team/worker", "reason": "x" * 30, field: ""}
        with pytest.raises(
            PropsError, match=f"^Waiver: {field}='' is invalid: String should have at least 1 character$"
        ):
            Waiver(**given)
    assert Waiver(rule="x", path="t", reason="x" * 30).rule == "x"  # a team's rule may have a one-letter id


def test_a_teams_rule_may_apply_to_several_subjects():
    from burrow import Rule

    rule = Rule("team-rule", (Tier.PRODUCTION,), ("workload", "broker"), "a team's rule", lambda facts: [])
    assert [rule.applies(PolicyFacts(subject), Tier.PRODUCTION) for subject in ("workload", "broker", "namespace")] == [
        True,
        True,
        False,
    ]


def test_configure_takes_its_waivers_by_name_and_rules_and_wording_only_by_name():
    import pytest
    from cdktf import App, TerraformStack

    from burrow import Guardrails
    from burrow.policy.guardrails import PROPS

    stack = TerraformStack(App(), "team")
    assert Guardrails.configure(stack, tier=Tier.STAGING, waivers=[]).tier == Tier.STAGING
    with pytest.raises(TypeError):
        Guardrails.configure(stack, Tier.STAGING, [], [], PROPS)


# --- workloads ------------------------------------------------------------------------------------


def test_a_scaled_object_without_a_minimum_scales_to_zero_and_is_refused_saying_so():
    """KEDA's minReplicaCount defaults to 0: the refusal names the replicas the workload may keep."""
    import json

    scaled = {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "a"}, "spec": {}}
    assert check("workload-replicas", "workload", json.loads(json.dumps([deployment(3), scaled]))) == [
        "run at least 2 replicas (replicas is 0)"
    ]


def test_an_autoscaler_without_a_minimum_keeps_kubernetes_default_of_one():
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "a"},
        "spec": {"maxReplicas": 5},
    }
    assert check("workload-replicas", "workload", [deployment(3), hpa]) == ["run at least 2 replicas (replicas is 1)"]


def test_a_deployment_without_replicas_keeps_kubernetes_default_of_one():
    assert check("workload-replicas", "workload", [deployment(None)]) == ["run at least 2 replicas (replicas is 1)"]


def test_an_autoscalers_minimum_is_what_a_workload_keeps_even_as_read_from_json():
    import json

    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "a"},
        "spec": {"minReplicas": 1, "maxReplicas": 5},
    }
    objects = json.loads(json.dumps([deployment(3), hpa]))
    assert check("workload-replicas", "workload", objects) == ["run at least 2 replicas (replicas is 1)"]


def test_an_image_from_a_registry_with_a_port_and_no_tag_is_untagged():
    assert check("image-tag", "workload", [deployment(image="registry:5000/team/a")]) == [
        "container a: image registry:5000/team/a uses 'latest'; pin a version or digest"
    ]
    assert check("image-tag", "workload", [deployment(image="registry:5000/team/a:1.2")]) == []


def test_a_daemon_set_or_a_job_keeps_no_replica_count_to_check():
    for kind in ("DaemonSet", "Job"):
        workload = {**deployment(None), "kind": kind}
        assert check("workload-replicas", "workload", [workload]) == [], kind
        assert check("workload-pdb", "workload", [workload]) == [], kind


def test_init_containers_need_no_probes_but_their_images_are_checked():
    """Kubernetes refuses probes on an init container; its image is pulled like any other."""
    init = {"name": "setup", "image": "busybox:latest"}
    probed = {
        "livenessProbe": {"httpGet": {"path": "/health", "port": 80}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 80}},
    }
    workload = deployment(**probed)
    workload["spec"]["template"]["spec"]["initContainers"] = [init]
    assert check("workload-probes", "workload", [workload]) == []
    assert check("image-tag", "workload", [workload]) == [
        "container setup: image busybox:latest uses 'latest'; pin a version or digest"
    ]
    assert check("workload-resources", "workload", [workload])[:1] == ["container setup: set resources.requests.cpu"]
    assert check("image-digest", "workload", [workload]) == [
        f"container {name}: pin image {image} by digest (image.digest: sha256:…)"
        for name, image in (("setup", "busybox:latest"), ("a", "r/a:1"))
    ]


# --- the broker -----------------------------------------------------------------------------------


def test_a_broker_without_a_replica_count_runs_the_charts_default_of_one():
    assert check("rabbitmq-replicas", "broker", values={}) == ["run 3 RabbitMQ replicas (replicaCount is 1)"]


def test_a_broker_that_leaves_persistence_to_the_chart_keeps_its_volumes():
    """Bitnami's chart persists by default: only an explicit false is refused."""
    assert check("rabbitmq-persistence", "broker", values={"persistence": {"size": "8Gi"}}) == []
    assert check("rabbitmq-persistence", "broker", values={"persistence": {"enabled": False}}) == [
        "turn on persistence.enabled (persistence.enabled is false)"
    ]


def test_only_hard_anti_affinity_passes_an_empty_preset_is_none_at_all():
    for preset in ("", "soft"):
        assert check("rabbitmq-anti-affinity", "broker", values={"podAntiAffinityPreset": preset}) == [
            f"set anti_affinity: hard (podAntiAffinityPreset is {preset})"
        ]
    assert check("rabbitmq-anti-affinity", "broker", values={"podAntiAffinityPreset": "hard"}) == []


def test_more_than_three_brokers_pass():
    assert check("rabbitmq-replicas", "broker", values={"replicaCount": 5}) == []
    assert check("rabbitmq-replicas", "broker", values={"replicaCount": 2}) == [
        "run 3 RabbitMQ replicas (replicaCount is 2)"
    ]


# --- ingress --------------------------------------------------------------------------------------


def https_ingress(*paths: dict) -> dict:
    """An Ingress served over TLS with HTTP redirected, routing `paths`."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "i", "annotations": {"alb.ingress.kubernetes.io/ssl-redirect": "443"}},
        "spec": {"tls": [{"hosts": ["h"]}], "rules": [{"http": {"paths": list(paths)}}]},
    }


def test_an_ingress_path_without_a_path_type_is_refused_not_a_crash():
    import json

    read = json.loads(json.dumps(https_ingress({"path": "/publish"})))
    assert check("public-ingress", "ingress", [read], tier=Tier.STAGING) == [
        "Ingress i: route only /publish, /health with pathType Exact, not '/publish' (None)"
    ]


def test_the_public_ingress_rule_reads_the_ingresses_among_the_facts_only():
    import json

    ingress = json.loads(json.dumps(https_ingress({"path": "/publish", "pathType": "Exact"})))
    certificate = {"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": {"name": "c"}, "spec": {}}
    assert check("public-ingress", "ingress", [ingress, certificate], tier=Tier.STAGING) == []


# --- node pools -----------------------------------------------------------------------------------


def node_pool(**spec) -> dict:
    """A NodePool as Terraform hands it over: read from JSON, not built from Python literals."""
    import json

    pool = {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "burrow"},
        "spec": {"template": {"spec": {}}, "disruption": {"budgets": [{"nodes": "10%"}]}, **spec},
    }
    return json.loads(json.dumps(pool))


def test_a_node_pool_read_from_json_gets_the_node_pool_rules():
    assert check("nodepool-limits", "nodepool", [node_pool(limits={"cpu": 8})]) == [
        "NodePool burrow: set limits on cpu and memory (limits)"
    ]


def test_node_pool_rules_read_the_node_pools_among_the_facts_only():
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {}}
    node_class = {"apiVersion": "karpenter.k8s.aws/v1", "kind": "EC2NodeClass", "metadata": {"name": "c"}, "spec": {}}
    limited = node_pool(limits={"cpu": 8, "memory": "32Gi"})
    for rule in ("nodepool-limits", "nodepool-disruption-budget", "nodepool-on-demand"):
        assert check(rule, "nodepool", [limited, service, node_class]) == [], rule


def test_a_node_pool_that_excludes_spot_runs_on_demand():
    requirement = {"key": "karpenter.sh/capacity-type", "operator": "NotIn", "values": ["spot"]}
    pool = node_pool(limits={"cpu": 8, "memory": "32Gi"})
    pool["spec"]["template"]["spec"]["requirements"] = [requirement]
    assert check("nodepool-on-demand", "nodepool", [pool]) == []


def test_a_production_node_pool_with_spot_is_refused_as_read_from_json():
    import json

    for capacity in (["spot"], ["spot", "on-demand"]):
        pool = node_pool(limits={"cpu": 8, "memory": "32Gi"})
        requirement = {"key": "karpenter.sh/capacity-type", "operator": "In", "values": capacity}
        pool["spec"]["template"]["spec"]["requirements"] = [requirement]
        assert check("nodepool-on-demand", "nodepool", json.loads(json.dumps([pool]))) == [
            f"NodePool burrow: capacity types {', '.join(capacity)}; production runs on on-demand only "
            "(capacity_types: [on-demand]), or waive nodepool-on-demand with the reason spot is acceptable"
        ], capacity


def test_a_node_pool_may_limit_more_than_cpu_and_memory():
    assert (
        check("nodepool-limits", "nodepool", [node_pool(limits={"cpu": 8, "memory": "32Gi", "nvidia.com/gpu": 2})])
        == []
    )


# --- what plain objects are -----------------------------------------------------------------------


def test_plain_objects_are_sorted_by_subject_each_holding_only_its_own():
    """As a raw `kubernetes_manifest` delivers them: read from JSON."""
    import json

    ingress = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"}, "spec": {}}
    pool = {"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "metadata": {"name": "p"}, "spec": {}}
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {}}
    objects = json.loads(json.dumps([deployment(), ingress, pool, config, service]))
    found = {facts.subject: facts.objects for facts in object_facts(objects)}
    assert found == {
        "workload": (deployment(), ingress, pool, config, service),
        "ingress": (ingress,),
        "nodepool": (pool,),
    }
    assert object_facts([config]) == ()


def test_only_a_network_policy_is_a_namespaces_default_deny():
    """Another kind with the same spec (a CRD of some policy engine) does not stand in for it."""
    import json

    deny = {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    refusal = ["keep the namespace's default-deny NetworkPolicy (default_deny=True)"]
    for kind in ("GlobalNetworkPolicy", "PolicyException"):
        lookalike = {"apiVersion": "example.com/v1", "kind": kind, "metadata": {"name": "d"}, "spec": deny}
        assert check("namespace-default-deny", "namespace", [lookalike]) == refusal, kind
    real = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "d"}, "spec": deny}
    assert check("namespace-default-deny", "namespace", json.loads(json.dumps([real]))) == []


def test_a_policy_that_denies_one_direction_only_is_not_the_namespaces_default_deny():
    for types in (["Ingress"], ["Egress"], []):
        policy = {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "d"},
            "spec": {"podSelector": {}, "policyTypes": types},
        }
        assert check("namespace-default-deny", "namespace", [policy]) == [
            "keep the namespace's default-deny NetworkPolicy (default_deny=True)"
        ], types


def test_a_network_policy_that_selects_some_pods_is_not_the_namespaces_default_deny():
    some = {"podSelector": {"matchLabels": {"app": "a"}}, "policyTypes": ["Ingress", "Egress"]}
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "d"}, "spec": some}
    assert check("namespace-default-deny", "namespace", [policy]) == [
        "keep the namespace's default-deny NetworkPolicy (default_deny=True)"
    ]


# --- a chart's values -----------------------------------------------------------------------------


def test_only_image_keys_name_images_in_a_charts_values():
    """A mapping under another key with a tag (a chart's, a git reference's) is not an image; an
    `image` mapping with neither tag nor digest keeps the chart's own pinned default."""
    for key in ("chart", "source"):
        assert check("image-tag", "chart", values={key: {"repository": "example/tool", "tag": "latest"}}) == [], key
    assert check("image-tag", "chart", values={"image": {"repository": "example/tool", "pullPolicy": "Always"}}) == []
    assert check("image-tag", "chart", values={"tool": {"image": {"repository": "example/tool", "tag": "latest"}}}) == [
        "tool.image: image example/tool:latest uses 'latest'; pin a version or digest"
    ]


def test_a_privileged_chart_setting_is_refused_as_a_boolean_or_as_the_text_true():
    """Helm renders `privileged: "true"` (a value set with `type: string`, a quoted YAML value) into a
    template as `true`; only false, in either form, keeps a pod restricted."""
    values = {
        "a": {"privileged": True},
        "b": {"hostNetwork": "true"},
        "c": {"hostPID": "True"},
        "d": {"hostIPC": False, "privileged": "false"},
        "e": {"allowPrivilegeEscalation": 1},
        "f": {"hostPID": "unset"},
    }
    assert check("workload-security", "chart", values=values) == [
        f"{key}: true breaks the restricted Pod Security Standard; set it false"
        for key in ("a.privileged", "b.hostNetwork", "c.hostPID")
    ]


def test_a_releases_set_of_type_string_is_read_literally_as_terraform_passes_it():
    """`type: string` keeps the text (as Helm's --set-string); any other `set` is read as YAML (as --set)."""
    import json

    from burrow.policy.delivered import chart_values

    attributes = json.loads(
        '{"set": [{"name": "image.tag", "value": "1.10", "type": "string"},'
        ' {"name": "replicaCount", "value": "3"}, {"name": "a\\\\.b", "value": "true"}]}'
    )
    assert chart_values(attributes) == {"image": {"tag": "1.10"}, "replicaCount": 3, "a.b": True}


def test_a_release_carrying_objects_is_policed_for_its_other_values_too(tmp_path):
    """A release's Kubernetes objects (kind and apiVersion) are facts of their own; every other value,
    an `objects` list that holds none included, is policed as chart values."""
    from cdktf import App, TerraformResource, TerraformStack

    from burrow.policy.delivered import delivered_facts

    stack = TerraformStack(App(outdir=str(tmp_path)), "team")
    release = TerraformResource(stack, "release", terraform_resource_type="helm_release")
    release.add_override(
        "values",
        [
            "objects:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: c}\nhostNetwork: true\nsecurityContext: {privileged: true}\n"
        ],
    )
    assert [(f.subject, f.chart_values) for f in delivered_facts(release)] == [
        ("chart", {"hostNetwork": True, "securityContext": {"privileged": True}})
    ]
    loose = TerraformResource(stack, "loose", terraform_resource_type="helm_release")
    loose.add_override("values", ["objects:\n- apiVersion: v1\n  hostNetwork: true\n"])
    (facts,) = delivered_facts(loose)
    assert check("workload-security", "chart", values=facts.chart_values) == [
        "objects[0].hostNetwork: true breaks the restricted Pod Security Standard; set it false"
    ]


def test_the_brokers_chart_values_meet_the_chart_rules_too(tmp_path):
    """An escape-hatch edit of the broker's release values (`hostNetwork: true`, an untagged image) is
    refused like the same edit of a third-party chart's: the chart rules read the broker's values."""
    import pytest
    from cdktf import App, TerraformStack

    from burrow import AppNamespace, Guardrails, KubeconfigCluster, RabbitMqBroker, Tier

    def broker_with(values: dict) -> None:
        app = App(outdir=str(tmp_path))
        stack = TerraformStack(app, "mq")
        KubeconfigCluster(kubeconfig_path="k", context="c", version="1.33").configure_providers(stack)
        Guardrails.configure(stack, Tier.DEVELOPMENT)
        namespace = AppNamespace(stack, "ns", {"name": "messaging"})
        RabbitMqBroker(stack, "mq", namespace=namespace, props={
            "image": {"registry": "r", "repository": "rabbitmq", "tag": "4"}, "keda_namespace": None,
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
            "values": [values]})
        app.synth()

    broker_with({})  # as built, it passes
    with pytest.raises(RuntimeError, match=r"mq: mq/mq: \[workload-security\] hostNetwork: true breaks") as refused:
        broker_with({"hostNetwork": True})
    # reported once, by the broker, which answers for its own release (a direct child): not again for the release
    assert str(refused.value).count("hostNetwork") == 1 and "mq/mq/release" not in str(refused.value)


# --- a broker's port beyond the cluster -----------------------------------------------------------


def service(kind: str, *ports: int | str) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "mq-federation"},
            "spec": {"type": kind, "ports": [{"port": 1, "targetPort": port} for port in ports]}}


def test_a_broker_port_beyond_the_cluster_is_amqp_over_tls_only():
    """Federation's load balancer carries 5671 (TLS); plain AMQP on any Service that leaves the
    cluster is refused in every tier, by port number or by the chart's port name."""
    for tier in Tier:
        assert check("rabbitmq-exposed-tls", "broker", [service("LoadBalancer", 5671)], tier=tier) == []
        assert check("rabbitmq-exposed-tls", "broker", [service("ClusterIP", 5672)], tier=tier) == []
        for exposed in ([service("LoadBalancer", 5671, 5672)], [service("NodePort", "amqp")]):
            assert check("rabbitmq-exposed-tls", "broker", exposed, tier=tier) == [
                "Service mq-federation exposes plain AMQP (5672) beyond the cluster: expose the broker's TLS port only"]


def test_the_charts_own_service_beyond_the_cluster_needs_tls_and_no_plain_port():
    refusal = ["service.type LoadBalancer exposes plain AMQP (5672) beyond the cluster: keep the chart's Service "
               "ClusterIP, or enable auth.tls and set service.portEnabled: false"]
    tls = {"auth": {"tls": {"enabled": True}}}
    assert check("rabbitmq-exposed-tls", "broker", values={"service": {"type": "ClusterIP"}}) == []
    assert check("rabbitmq-exposed-tls", "broker", values={"service": {"type": "LoadBalancer"}}) == refusal
    assert check("rabbitmq-exposed-tls", "broker", values={**tls, "service": {"type": "LoadBalancer"}}) == refusal
    assert check("rabbitmq-exposed-tls", "broker",
                 values={**tls, "service": {"type": "LoadBalancer", "portEnabled": False}}) == []
