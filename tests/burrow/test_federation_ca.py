"""The environment's federation CA (issue 25: federation over TLS): cert-manager in every federated
region and nowhere else, one CA per environment made in the primary region's cluster and shared
through a Secrets Manager secret that Terraform creates without a value, cert-manager's store role
limited to that secret."""

from __future__ import annotations

import json

import pytest
import yaml

from burrow.addons.cert_manager import FEDERATION_ISSUER
from burrow.config.loader import load_environment
from burrow.k8s.release import terraform_unescape
from burrow.pins import CERT_MANAGER, PINS
from burrow_tools.rehearse import resolve
from tests.conftest import ENVIRONMENTS
from tests.support.services import ROOT

CA_KEY = "burrow/prod/federation-ca"
READ = {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
WRITE = {"secretsmanager:PutSecretValue", "secretsmanager:DeleteResourcePolicy"}


def views(env: str) -> dict:
    return {view.stack_prefix: view for view in load_environment(env, ROOT / "environments").regional()}


def releases(synthesized, prefix: str) -> dict[str, dict]:
    return {r["name"]: r for r in synthesized.stack(f"{prefix}-addons")["resource"]["helm_release"].values()}


def ca_objects(synthesized, prefix: str) -> list[dict]:
    release = releases(synthesized, prefix)["burrow-federation-ca"]
    return yaml.safe_load(terraform_unescape(release["values"][0]))["objects"]


@pytest.mark.parametrize("env", [e for e in ENVIRONMENTS if e != "dev"])
def test_cert_manager_is_installed_exactly_in_the_federated_regions(synthesized, env):
    for prefix, view in views(env).items():
        installed = releases(synthesized, prefix)
        federates = bool(view.federation_peers)
        assert ("cert-manager" in installed) is federates, prefix
        assert ("burrow-federation-ca" in installed) is federates, prefix
    assert env != "prod" or all(v.federation_peers for v in views(env).values())  # prod: both regions


def test_cert_manager_installs_at_its_pin_with_crds_kept_and_no_aggregated_roles(synthesized):
    assert PINS["cert-manager"] is CERT_MANAGER
    assert (CERT_MANAGER.repository, CERT_MANAGER.version, CERT_MANAGER.source, CERT_MANAGER.tag) == (
        "https://charts.jetstack.io", "v1.21.1", "cert-manager/cert-manager", "{version}")
    for prefix in views("prod"):
        release = releases(synthesized, prefix)["cert-manager"]
        assert (release["chart"], release["version"], release["namespace"], release["repository"]) == (
            "cert-manager", "v1.21.1", "cert-manager", "https://charts.jetstack.io")
        values = yaml.safe_load(release["values"][0])
        assert values["crds"] == {"enabled": True, "keep": True}
        assert values["global"]["rbac"]["aggregateClusterRoles"] is False
        assert values["global"]["leaderElection"]["namespace"] == "cert-manager"
        assert values["webhook"]["securePort"] == 10250
        assert values["cainjector"]["extraArgs"] == ["--namespace=cert-manager"]
        # no Ingress or Gateway gets a certificate from an annotation (any editor could get one
        # from the federation CA for a peer broker's name)
        assert values["extraArgs"] == ["--controllers=*,-ingress-shim,-gateway-shim"]
        for part in (values, values["webhook"], values["cainjector"], values["startupapicheck"]):
            assert part["securityContext"]["runAsNonRoot"] is True
            assert part["containerSecurityContext"]["allowPrivilegeEscalation"] is False
            assert part["resources"]["requests"]


def test_the_primary_makes_the_ca_and_pushes_it_to_the_shell(synthesized):
    objects = {(o["kind"], o["metadata"]["name"]): o for o in ca_objects(synthesized, "prod")}
    assert set(objects) == {("Issuer", "burrow-federation-self-signed"), ("Certificate", "burrow-federation-root"),
                            ("Issuer", "burrow-federation-root"), ("Certificate", "burrow-federation-ca"),
                            ("PushSecret", "burrow-federation-ca"), ("ClusterIssuer", FEDERATION_ISSUER)}
    # an unconstrained root, self-signed, whose key stays in this cluster (nothing pushes it) ...
    root = objects[("Certificate", "burrow-federation-root")]["spec"]
    assert root["isCA"] is True and "nameConstraints" not in root
    assert root["issuerRef"] == {"group": "cert-manager.io", "kind": "Issuer", "name": "burrow-federation-self-signed"}
    assert objects[("Issuer", "burrow-federation-root")]["spec"] == {"ca": {"secretName": "burrow-federation-root"}}
    # ... signs the shared CA, which carries the constraints: Erlang enforces an intermediate's
    certificate = objects[("Certificate", "burrow-federation-ca")]["spec"]
    assert certificate["isCA"] is True and certificate["secretName"] == "burrow-federation-ca"
    assert certificate["issuerRef"] == {"group": "cert-manager.io", "kind": "Issuer", "name": "burrow-federation-root"}
    assert (certificate["duration"], certificate["renewBefore"]) == ("87600h", "8760h")
    assert certificate["privateKey"]["rotationPolicy"] == "Never"  # a renewal keeps the brokers' certificates valid
    # the CA signs only the brokers' names: the environment's zone and in-cluster service names
    assert certificate["nameConstraints"] == {
        "critical": True, "permitted": {"dnsDomains": ["prod.burrow.example.com", "svc.cluster.local", "svc"]},
        "excluded": {"ipRanges": ["0.0.0.0/0", "::/0"]}}
    push = objects[("PushSecret", "burrow-federation-ca")]
    assert push["apiVersion"] == "external-secrets.io/v1alpha1"
    assert push["metadata"]["namespace"] == "cert-manager"
    assert push["spec"]["secretStoreRefs"] == [{"kind": "ClusterSecretStore",
                                                "name": "burrow-secrets-manager-cert-manager"}]
    assert push["spec"]["selector"] == {"secret": {"name": "burrow-federation-ca"}}
    [data] = push["spec"]["data"]
    assert data["match"] == {"remoteRef": {"remoteKey": CA_KEY}}  # the whole Secret: tls.crt, tls.key, ca.crt
    assert data["metadata"]["spec"] == {"secretPushFormat": "string"}
    assert push["spec"]["deletionPolicy"] == "None"
    assert objects[("ClusterIssuer", FEDERATION_ISSUER)]["spec"] == {"ca": {"secretName": "burrow-federation-ca"}}


def test_the_other_region_reads_the_replica_and_signs_with_the_same_issuer(synthesized):
    objects = {(o["kind"], o["metadata"]["name"]): o for o in ca_objects(synthesized, "prod-us-east-1")}
    assert set(objects) == {("ExternalSecret", "burrow-federation-ca"), ("ClusterIssuer", FEDERATION_ISSUER)}
    replica = objects[("ExternalSecret", "burrow-federation-ca")]
    assert replica["metadata"]["namespace"] == "cert-manager"
    assert replica["spec"]["secretStoreRef"] == {"kind": "ClusterSecretStore",
                                                 "name": "burrow-secrets-manager-cert-manager"}
    assert replica["spec"]["dataFrom"] == [{"extract": {"key": CA_KEY}}]
    template = replica["spec"]["target"]["template"]
    assert template["type"] == "kubernetes.io/tls" and set(template["data"]) == {"tls.crt", "tls.key", "ca.crt"}
    assert objects[("ClusterIssuer", FEDERATION_ISSUER)]["spec"] == {"ca": {"secretName": "burrow-federation-ca"}}
    store = next(o for o in yaml.safe_load(terraform_unescape(
        releases(synthesized, "prod-us-east-1")["burrow-secret-store"]["values"][0]))["objects"]
        if o["kind"] == "ClusterSecretStore" and o["metadata"]["name"] == "burrow-secrets-manager-cert-manager")
    assert store["spec"]["provider"]["aws"]["region"] == "us-east-1"  # the replica, in the region's own Secrets Manager
    assert store["spec"]["conditions"] == [{"namespaces": ["cert-manager"]}]


def test_the_ca_secret_is_an_empty_replicated_shell_under_the_environment_key(synthesized):
    stack = synthesized.stack("prod-cluster")
    [(address, shell)] = [(a, s) for a, s in stack["resource"]["aws_secretsmanager_secret"].items()
                          if s["name"] == CA_KEY]
    assert shell["tags"] == {"managed-by": "external-secrets"}  # a PushSecret writes only to a secret so tagged
    assert [r["region"] for r in shell["replica"]] == ["us-east-1"]
    assert "replicated-key" in shell["kms_key_id"] and all("replicated-key-us-east-1" in r["kms_key_id"]
                                                           for r in shell["replica"])
    versions = stack["resource"]["aws_secretsmanager_secret_version"].values()
    assert not [v for v in versions if f"aws_secretsmanager_secret.{address}." in json.dumps(v)]
    assert "federation-ca" not in json.dumps(stack.get("ephemeral", {}))
    federation = next(a for a, s in stack["resource"]["aws_secretsmanager_secret"].items()
                      if s["name"] == "burrow/prod/federation")
    assert [v for v in versions if f"aws_secretsmanager_secret.{federation}." in json.dumps(v)]  # unlike the password
    # no other region creates it: there it is Secrets Manager's replica
    assert CA_KEY not in json.dumps(synthesized.stack("prod-us-east-1-cluster")["resource"]["aws_secretsmanager_secret"])


def cert_manager_statements(synthesized, prefix: str) -> list[dict]:
    policies = synthesized.stack(f"{prefix}-cluster")["resource"]["aws_iam_role_policy"]
    [policy] = [p for key, p in policies.items() if key.startswith("credentials_reader-cert-manager-policy")]
    return json.loads(policy["policy"])["Statement"]


@pytest.mark.parametrize(("prefix", "region", "writes"), [("prod", "eu-west-1", True),
                                                         ("prod-us-east-1", "us-east-1", False)])
def test_cert_managers_store_role_reads_and_in_the_primary_writes_only_the_ca(synthesized, prefix, region, writes):
    stacks = synthesized.stacks
    actions: set[str] = set()
    for statement in cert_manager_statements(synthesized, prefix):
        granted = set([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
        actions |= granted
        if all(a.startswith("secretsmanager:") for a in granted):
            for resource in statement["Resource"]:
                if resource.startswith("arn:"):  # a replica, named by ARN pattern
                    assert resource == f"arn:aws:secretsmanager:{region}:345678901234:secret:{CA_KEY}-*", resource
                else:
                    stack, address = resolve(stacks, f"{prefix}-cluster", resource)
                    assert stacks[stack]["resource"]["aws_secretsmanager_secret"][address.split(".")[1]]["name"] \
                        == CA_KEY
        else:  # KMS: only through Secrets Manager
            assert granted <= {"kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt"}, statement
            via = statement["Condition"]["StringEquals"]["kms:ViaService"]
            assert all(v.startswith("secretsmanager.") for v in ([via] if isinstance(via, str) else via)), statement
    assert {a for a in actions if a.startswith("secretsmanager:")} == (READ | WRITE if writes else READ)
    assert bool(actions & {"kms:GenerateDataKey", "kms:Encrypt"}) is writes
