"""Least privilege in the cluster (issue 25, findings 4-7 and 13): each test states what is enforced
and fails on the output Burrow synthesized before it was."""

from __future__ import annotations

import ipaddress

import pytest
import yaml

from burrow.k8s.release import release_values, terraform_unescape
from tests.burrow.test_config import env_dir, error_for, write  # noqa: F401 - env_dir is a fixture
from tests.conftest import ENVIRONMENTS

MONITORED = tuple(env for env in ENVIRONMENTS if env != "dev")  # dev.yaml turns monitoring off


def release(synthesized, stack: str, name: str) -> dict:
    """(the helm_release `name` of `stack`, its values merged)"""
    found = [r for r in synthesized.stack(stack)["resource"]["helm_release"].values() if r["name"] == name]
    assert len(found) == 1, f"{stack}: {len(found)} releases named {name}"
    values: dict = {}
    for doc in found[0].get("values") or []:
        values.update(yaml.safe_load(terraform_unescape(doc)))
    return values


def objects_of(synthesized, env: str, kind: str, namespace: str | None = None) -> dict[str, dict]:
    return {
        o["metadata"]["name"]: o
        for o in synthesized.objects(env)
        if o["kind"] == kind and (namespace is None or o["metadata"].get("namespace") == namespace)
    }


def networks(rule: dict, side: str) -> list[ipaddress.IPv4Network]:
    return [ipaddress.IPv4Network(peer["ipBlock"]["cidr"]) for peer in rule.get(side, []) if "ipBlock" in peer]


# Finding 4: Flux applies as a tenant of the app namespace, and only signed commits.


def test_flux_is_multitenant_and_unprivileged(synthesized):
    flux = release(synthesized, "uat-addons", "flux")
    assert flux["multitenancy"] == {"enabled": True, "privileged": False, "defaultServiceAccount": "default"}


def test_flux_applies_the_tree_as_the_app_namespaces_tenant_and_verifies_signatures(synthesized):
    sync = release(synthesized, "uat-addons", "burrow-gitops-sync")["objects"]
    by_kind = {o["kind"]: o for o in sync}
    assert {o["metadata"]["namespace"] for o in sync} == {"burrow-uat"}
    kustomization = by_kind["Kustomization"]["spec"]
    assert (kustomization["serviceAccountName"], kustomization["targetNamespace"]) == ("flux-deployer", "burrow-uat")
    assert by_kind["GitRepository"]["spec"]["verify"] == {"mode": "HEAD", "secretRef": {"name": "flux-signing-keys"}}
    assert "ClusterRole" not in by_kind and "ClusterRoleBinding" not in by_kind
    assert by_kind["RoleBinding"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "flux-deployer", "namespace": "burrow-uat"}
    ]
    assert all("*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"] for rule in by_kind["Role"]["rules"])
    assert not any("namespaces" in rule["resources"] for rule in by_kind["Role"]["rules"])
    keys = [
        s
        for s in synthesized.stack("uat-addons")["resource"]["kubernetes_secret_v1"].values()
        if s["metadata"]["name"] == "flux-signing-keys"
    ]
    assert [k["metadata"]["namespace"] for k in keys] == ["burrow-uat"]
    assert keys[0]["data"]["signer-0.asc"].startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    # The namespace is Terraform's (a tenant cannot create namespaces), with its Pod Security labels.
    [namespace] = [
        n
        for n in synthesized.stack("uat-addons")["resource"]["kubernetes_namespace_v1"].values()
        if n["metadata"]["name"] == "burrow-uat"
    ]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_the_tenant_may_apply_every_object_of_the_tree_and_the_tree_holds_no_namespace(synthesized, tmp_path):
    from burrow_tools.gitops import check_tree, outside_tenant

    objects = check_tree(synthesized.outdir / "gitops" / "uat", "1.33", tmp_path)
    assert "Namespace" not in {o["kind"] for o in objects}
    [helm_release] = [o for o in objects if o["kind"] == "HelmRelease"]
    assert helm_release["spec"]["serviceAccountName"] == "flux-deployer"
    assert (
        outside_tenant({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "x"}})
        is not None
    )


def test_a_gitops_environment_without_signing_keys_is_refused(env_dir):  # noqa: F811
    write(
        env_dir,
        "qa",
        (env_dir / "qa.yaml").read_text() + "delivery: gitops\ngitops: {repository: 'git@github.com:org/repo.git'}\n",
    )
    assert "qa.yaml: gitops.signing_keys = []: Flux applies only signed commits" in error_for(env_dir, "qa")
    write(
        env_dir,
        "qa",
        (env_dir / "qa.yaml")
        .read_text()
        .replace(
            "repository: 'git@github.com:org/repo.git'",
            "repository: 'git@github.com:org/repo.git', signing_keys: [abc]",
        ),
    )
    assert "gitops.signing_keys" in error_for(env_dir, "qa")
    assert "not an ASCII-armored OpenPGP public key" in error_for(env_dir, "qa")


# Finding 5: no chart reads every Secret of the cluster.


@pytest.mark.parametrize("env", MONITORED)
def test_grafana_reads_secrets_of_its_namespace_only_and_dashboards_by_configmap(synthesized, env):
    grafana = release(synthesized, f"{env}-addons", "kube-prometheus-stack")["grafana"]
    assert grafana["rbac"]["namespaced"] is True
    dashboards = grafana["sidecar"]["dashboards"]
    assert dashboards["resource"] == "configmap"
    assert dashboards["searchNamespace"] == ["monitoring", f"burrow-{env}"]
    role = objects_of(synthesized, env, "Role", f"burrow-{env}")["grafana-dashboard-reader"]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_keda_reads_secrets_of_its_namespace_only(synthesized, env):
    permissions = release(synthesized, f"{env}-addons", "keda")["permissions"]
    assert permissions == {"operator": {"restrict": {"secret": True}}, "metricServer": {"restrict": {"secret": True}}}


# Finding 6: network paths name their peers.


def test_the_producer_admits_only_the_load_balancers_public_subnets(synthesized):
    from burrow.config.loader import load_environment
    from tests.support.services import ROOT

    network = load_environment("prod", ROOT / "environments").network  # prod: the public producer
    policy = next(
        o for o in synthesized.objects("prod", "prod") if o["metadata"]["name"] == "producer-from-load-balancer"
    )
    [rule] = policy["spec"]["ingress"]
    admitted = networks(rule, "from")
    assert [str(n) for n in admitted] == network.public_subnet_cidrs
    private = [ipaddress.IPv4Network(c) for c in network.private_subnet_cidrs]
    assert not any(a.overlaps(p) for a in admitted for p in private)  # no pod address qualifies


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_policy_of_the_app_admits_a_whole_vpc(synthesized, env):
    for policy in objects_of(synthesized, env, "NetworkPolicy", f"burrow-{env}").values():
        for rule in policy["spec"].get("ingress", []):
            assert all(n.prefixlen > 16 for n in networks(rule, "from")), policy["metadata"]["name"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_broker_admits_labelled_clients_and_egresses_only_to_named_peers(synthesized, env):
    policy = objects_of(synthesized, env, "NetworkPolicy")["rabbitmq-broker"]
    for rule in policy["spec"]["ingress"]:
        ports = {p["port"] for p in rule["ports"]}
        for peer in rule["from"]:
            if 5672 in ports and "ipBlock" not in peer:
                assert peer.get("podSelector", {}).get("matchLabels"), peer  # never a whole namespace
    for rule in policy["spec"]["egress"]:
        assert rule.get("to") or env == "dev", rule  # every egress rule names where it goes (dev: kind's API)
        assert {p["port"] for p in rule["ports"]} <= {443, 6443, 4369, 25672, 5672, 5671}


def test_federation_keeps_client_addresses_and_admits_only_the_peer_broker_subnets(synthesized):
    from burrow.config.loader import load_environment
    from tests.support.services import ROOT

    env = load_environment("prod", ROOT / "environments")
    peer = env.in_region("us-east-1").network
    service = next(o for o in synthesized.objects("prod", "prod") if o["metadata"]["name"] == "rabbitmq-federation")
    annotations = service["metadata"]["annotations"]
    assert (
        annotations["service.beta.kubernetes.io/aws-load-balancer-target-group-attributes"]
        == "preserve_client_ip.enabled=true"
    )
    assert service["spec"]["loadBalancerSourceRanges"] == peer.private_subnet_cidrs
    # the load balancer carries AMQP over TLS only, to the brokers' TLS listener
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(5671, 5671)]
    policy = next(o for o in synthesized.objects("prod", "prod") if o["metadata"]["name"] == "rabbitmq-broker")

    def from_networks(rules: list[dict], port: int, direction: str) -> list[str]:
        return [str(n) for rule in rules if port in {p["port"] for p in rule["ports"]} for n in networks(rule, direction)]

    # the peer brokers come in on the TLS port only; plain AMQP is for the namespace's labelled clients
    assert from_networks(policy["spec"]["ingress"], 5671, "from") == peer.private_subnet_cidrs
    assert from_networks(policy["spec"]["ingress"], 5672, "from") == []
    assert from_networks(policy["spec"]["egress"], 5671, "to") == peer.private_subnet_cidrs
    assert from_networks(policy["spec"]["egress"], 5672, "to") == []
    health = [
        rule
        for rule in policy["spec"]["ingress"]
        if {p["port"] for p in rule["ports"]} == {9419} and networks(rule, "from")
    ]
    assert [str(n) for n in networks(health[0], "from")] == env.network.private_subnet_cidrs


def test_federated_brokers_serve_tls_with_a_certificate_of_the_environments_federation_ca(synthesized):
    """Each prod region's broker gets a cert-manager Certificate from the one federation
    ClusterIssuer, for the name the other region dials and its in-cluster names, and the chart
    serves it on 5671 (its Secret, not a chart-made one; `ca.crt` is the CA the links trust).
    Environments without federation have neither."""
    from burrow.app.federation import FEDERATION_ISSUER, FEDERATION_TLS_SECRET

    built = next(b for b in synthesized.built if b.env.name == "prod")
    for app in built.apps:
        prefix, region = app.env.stack_prefix, app.env.aws.region
        [certificate] = [o for o in synthesized.objects("prod", prefix)
                         if o["kind"] == "Certificate" and o["metadata"]["namespace"] == "burrow-prod"]
        spec = certificate["spec"]
        assert certificate["apiVersion"] == "cert-manager.io/v1" and certificate["metadata"]["namespace"] == "burrow-prod"
        assert spec["issuerRef"] == {"group": "cert-manager.io", "kind": "ClusterIssuer", "name": FEDERATION_ISSUER}
        assert spec["secretName"] == FEDERATION_TLS_SECRET == "rabbitmq-federation-tls"
        assert spec["dnsNames"] == [f"rabbitmq.{region}.prod.burrow.example.com",
                                    "rabbitmq.burrow-prod.svc.cluster.local", "rabbitmq.burrow-prod.svc"]
        assert spec["privateKey"]["rotationPolicy"] == "Always" and spec["privateKey"]["algorithm"] == "ECDSA"
        # no commonName: cert-manager refuses one over 64 characters, and a zone may be 200 long
        assert "commonName" not in spec
        # every name lies inside the CA's name constraints (a name outside would fail verification)
        [ca] = [o for o in synthesized.objects("prod", "prod")
                if o["kind"] == "Certificate" and o["spec"].get("nameConstraints")]
        permitted = ca["spec"]["nameConstraints"]["permitted"]["dnsDomains"]
        assert all(any(name.endswith("." + domain) for domain in permitted) for name in spec["dnsNames"]), permitted
        assert "server auth" in spec["usages"]
        values = release_values(app.broker.release)
        assert values["auth"]["tls"] == {"enabled": True, "autoGenerated": False, "existingSecret": FEDERATION_TLS_SECRET,
                                         "existingSecretFullChain": False, "failIfNoPeerCert": False,
                                         "sslOptionsVerify": "verify_peer"}
        assert values["service"]["ports"]["amqpTls"] == values["containerPorts"]["amqpTls"] == 5671
    for env in ("qa", "preprod"):
        assert not [o for o in synthesized.objects(env) if o["kind"] == "Certificate" and o["metadata"]["namespace"] == env]
        assert "tls" not in synthesized.rabbitmq_values(env)["auth"]


@pytest.mark.parametrize("env", MONITORED)
def test_monitoring_denies_by_default_and_admits_its_own_paths(synthesized, env):
    policies = release(synthesized, f"{env}-addons", "monitoring-network")["objects"]
    by_name = {p["metadata"]["name"]: p["spec"] for p in policies}
    assert by_name["default-deny"] == {
        "podSelector": {},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [],
        "egress": [],
    }
    grafana = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "grafana"}}}
    assert by_name["prometheus"]["ingress"][0]["from"] == [grafana]


# Finding 7: public entry only where meant.


@pytest.mark.parametrize("env", ("prod",))  # the environments with a public producer
def test_the_internet_facing_class_serves_the_app_namespace_only_with_its_certificate(synthesized, env):
    controller = release(synthesized, f"{env}-addons", "aws-load-balancer-controller")
    params = controller["ingressClassParams"]
    assert params["name"] == controller["ingressClass"] == "alb"
    assert params["spec"]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": f"burrow-{env}"}}
    assert params["spec"]["scheme"] == "internet-facing"
    assert params["spec"]["certificateArn"][0].startswith("${")  # the validated certificate, by reference
    assert controller["disableIngressClassAnnotation"] is True


@pytest.mark.parametrize("env", ("prod",))
def test_external_dns_reads_only_burrows_annotated_objects(synthesized, env):
    assert release(synthesized, f"{env}-addons", "external-dns")["annotationFilter"] == "burrow.dev/external-dns=true"
    ingress = objects_of(synthesized, env, "Ingress")["producer"]
    assert ingress["metadata"]["annotations"]["burrow.dev/external-dns"] == "true"


# Finding 13: Loki is multi-tenant and only Grafana and Alloy reach it.


@pytest.mark.parametrize("env", ("prod",))  # the environments with Loki
def test_loki_is_multi_tenant_and_only_grafana_and_alloy_reach_its_api(synthesized, env):
    addons = f"{env}-addons"
    assert release(synthesized, addons, "loki")["loki"]["auth_enabled"] is True
    pipeline = release(synthesized, addons, "alloy")["alloy"]["configMap"]["content"]
    assert 'tenant_id = "burrow"' in pipeline
    [source] = release(synthesized, addons, "kube-prometheus-stack")["grafana"]["additionalDataSources"]
    assert source["jsonData"] == {"httpHeaderName1": "X-Scope-OrgID"}
    assert source["secureJsonData"] == {"httpHeaderValue1": "burrow"}
    policies = {p["metadata"]["name"]: p["spec"] for p in release(synthesized, addons, "monitoring-network")["objects"]}
    [api] = [rule for rule in policies["loki"]["ingress"] if rule.get("ports") == [{"protocol": "TCP", "port": 3100}]]
    assert [peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for peer in api["from"]] == [
        "grafana",
        "alloy",
    ]
