"""Secrets by consumer (issue 25, finding 1): every namespace that reads generated secrets has its
own store, authenticated as its own ServiceAccount, whose IAM role reaches only its secrets. The
table of who reaches what is computed from the synthesized stacks, printed, and must equal the one
in docs/security.md."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from burrow.config.loader import load_environment
from burrow.config.schema import EnvironmentConfig
from burrow.k8s.release import terraform_unescape
from burrow_tools.rehearse import find, resolve
from tests.conftest import ENVIRONMENTS

ROOT = Path(__file__).resolve().parents[2]
CLOUD = tuple(env for env in ENVIRONMENTS if env != "dev")
BROKER_USERS = {"broker-producer", "broker-consumer", "broker-monitoring"}
#: What each consumer is meant to read (the app: its broker's definitions hold every broker user's
#: password; keda: its scaler's AMQP URI needs the monitoring user's password, and nothing else;
#: cert-manager: the federation CA, in federated regions).
MEANT = {
    "app": {"rabbitmq", *BROKER_USERS, "producer", "federation"},
    "monitoring": {"grafana"},
    "keda": {"broker-monitoring"},
    "cert-manager": {"federation-ca"},
}
#: What a PushSecret may call on the one secret it writes, besides reading it.
WRITE = {"secretsmanager:PutSecretValue", "secretsmanager:DeleteResourcePolicy"}
_SECRET = re.compile(r"^arn:aws:secretsmanager:[\w-]+:\d+:secret:(.+)-\*$")


def regional_prefixes(env: str) -> list[str]:
    return [view.stack_prefix for view in load_environment(env, ROOT / "environments").regional()]


def store_objects(synthesized, prefix: str) -> list[dict]:
    addons = synthesized.stack(f"{prefix}-addons")
    [store] = [r for r in addons["resource"]["helm_release"].values() if r["name"] == "burrow-secret-store"]
    return yaml.safe_load(terraform_unescape(store["values"][0]))["objects"]


def secret_name(stacks: dict, stack: str, resource: str) -> str:
    """The Secrets Manager name a policy's Resource entry stands for."""
    replica = _SECRET.match(resource)
    if replica:
        return replica.group(1)
    found = find(stacks, resolve(stacks, stack, resource))
    assert found is not None, resource
    return found["name"]


def regions_of(env: str) -> dict[str, EnvironmentConfig]:
    return {view.stack_prefix: view for view in load_environment(env, ROOT / "environments").regional()}


def reachable(synthesized, prefix: str, writes: bool = False) -> dict[str, set[str]]:
    """Consumer namespace -> the Secrets Manager names its store's role may read (`writes`: may
    write), following store -> ServiceAccount -> IRSA role -> the role's policies."""
    stacks, objects = synthesized.stacks, store_objects(synthesized, prefix)
    accounts = {
        (o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects if o["kind"] == "ServiceAccount"
    }
    table = {}
    for store in (o for o in objects if o["kind"] == "ClusterSecretStore"):
        [condition] = store["spec"]["conditions"]
        [namespace] = condition["namespaces"]
        account_ref = store["spec"]["provider"]["aws"]["auth"]["jwt"]["serviceAccountRef"]
        account = accounts[(account_ref["namespace"], account_ref["name"])]
        role_stack, role = resolve(
            stacks, f"{prefix}-addons", account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        )
        names = set()
        for policy in stacks[role_stack]["resource"]["aws_iam_role_policy"].values():
            if resolve(stacks, role_stack, policy["role"]) != (role_stack, role):
                continue
            for statement in json.loads(policy["policy"])["Statement"]:
                actions = [a for a in statement["Action"] if a.startswith("secretsmanager:")]
                if actions and (not writes or set(actions) - {"secretsmanager:GetSecretValue",
                                                                 "secretsmanager:DescribeSecret"}):
                    names |= {secret_name(stacks, role_stack, r) for r in statement["Resource"]}
        table[namespace] = names
    return table


def names(found: set[str]) -> str:
    return ", ".join(f"`{s}`" for s in sorted(found)) or "none"


def markdown(tables: dict[str, dict[str, set[str]]], written: dict[str, dict[str, set[str]]]) -> str:
    rows = ["| stacks | consumer (namespace) | Secrets Manager secrets it can read | and write |", "|---|---|---|---|"]
    for prefix, table in tables.items():
        rows += [f"| {prefix} | `{ns}` | {names(read)} | {names(written[prefix].get(ns, set()))} |"
                 for ns, read in table.items()]
    return "\n".join(rows)


def consumer(namespace: str) -> str:
    return namespace if namespace in ("monitoring", "keda", "cert-manager") else "app"


def consumers(view: EnvironmentConfig) -> set[str]:
    """The consumers of one region: cert-manager only where the region federates."""
    return {view.namespace, "monitoring", "keda", *(["cert-manager"] if view.federation_peers else [])}


@pytest.mark.parametrize("env", CLOUD)
def test_each_consumer_reaches_only_its_own_secrets(synthesized, env):
    views = regions_of(env)
    tables = {prefix: reachable(synthesized, prefix) for prefix in views}
    written = {prefix: reachable(synthesized, prefix, writes=True) for prefix in views}
    print(f"\n{markdown(tables, written)}")
    for prefix, table in tables.items():
        assert set(table) == consumers(views[prefix]), prefix
        for namespace, names in table.items():
            keys = {name.removeprefix(f"burrow/{env}/") for name in names}
            assert keys and keys <= MEANT[consumer(namespace)], (prefix, namespace, sorted(names))
        # the app's token and federation password, Grafana's password: nobody else reaches them
        assert not table["monitoring"] & table[f"burrow-{env}"]
        # KEDA's scaler: the monitoring user's password, not the administrator's nor the Erlang cookie
        assert table["keda"] == {f"burrow/{env}/broker-monitoring"}
        # the federation CA: cert-manager alone reads it, and writes it only where the CA is made
        assert {ns for ns, found in table.items() if f"burrow/{env}/federation-ca" in found} <= {"cert-manager"}
        ca_writer = views[prefix].is_primary and bool(views[prefix].federation_peers)
        assert {ns: found for ns, found in written[prefix].items() if found} == (
            {"cert-manager": {f"burrow/{env}/federation-ca"}} if ca_writer else {}), prefix


def test_the_table_in_docs_security_is_the_one_prod_and_qa_synthesize(synthesized):
    prefixes = [prefix for env in ("qa", "prod") for prefix in regional_prefixes(env)]
    table = markdown({prefix: reachable(synthesized, prefix) for prefix in prefixes},
                     {prefix: reachable(synthesized, prefix, writes=True) for prefix in prefixes})
    assert table in (ROOT / "docs" / "security.md").read_text(), table


@pytest.mark.parametrize("env", CLOUD)
def test_every_store_authenticates_as_its_own_account_and_the_operator_holds_no_role(synthesized, env):
    for prefix, view in regions_of(env).items():
        objects = store_objects(synthesized, prefix)
        stores = [o for o in objects if o["kind"] == "ClusterSecretStore"]
        accounts = {o["spec"]["provider"]["aws"]["auth"]["jwt"]["serviceAccountRef"]["name"] for o in stores}
        assert len(accounts) == len(stores) == len(consumers(view)), prefix
        roles = [
            o["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] for o in objects if o["kind"] == "ServiceAccount"
        ]
        assert len(set(roles)) == len(roles) == len(consumers(view)), prefix
        addons = synthesized.stack(f"{prefix}-addons")
        [operator] = [r for r in addons["resource"]["helm_release"].values() if r["name"] == "external-secrets"]
        values = yaml.safe_load(operator["values"][0])
        assert "annotations" not in values["serviceAccount"]
        assert values["rbac"] == {"aggregateToEdit": False, "aggregateToView": False}


@pytest.mark.parametrize("env", CLOUD)
def test_a_store_without_auth_is_refused_at_admission(synthesized, env):
    objects = store_objects(synthesized, env)
    [policy] = [o for o in objects if o["kind"] == "ValidatingAdmissionPolicy"]
    [binding] = [o for o in objects if o["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert policy["apiVersion"] == binding["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert binding["spec"] == {"policyName": policy["metadata"]["name"], "validationActions": ["Deny"]}
    [rule] = policy["spec"]["matchConstraints"]["resourceRules"]
    assert set(rule["resources"]) == {"secretstores", "clustersecretstores"}
    assert set(rule["operations"]) == {"CREATE", "UPDATE"}
    [validation] = policy["spec"]["validations"]
    assert "has(object.spec.provider.aws.auth)" in validation["expression"]
    assert policy["spec"]["failurePolicy"] == "Fail"


@pytest.mark.parametrize("env", CLOUD)
def test_every_reader_role_decrypts_only_through_secrets_manager(synthesized, env):
    for view in load_environment(env, ROOT / "environments").regional():
        policies = synthesized.stack(f"{view.stack_prefix}-cluster")["resource"]["aws_iam_role_policy"]
        decrypts = [
            statement
            for key, policy in policies.items()
            if key.startswith("credentials_reader")
            for statement in json.loads(policy["policy"])["Statement"]
            if "kms:Decrypt" in statement["Action"]
        ]
        assert decrypts, view.stack_prefix
        for statement in decrypts:
            condition = statement["Condition"]
            assert condition["StringEquals"] == {"kms:ViaService": f"secretsmanager.{view.aws.region}.amazonaws.com"}
            if statement["Resource"] == f"arn:aws:kms:{view.aws.region}:{view.aws.account_id}:key/*":
                # a replica's key is named by its alias (the primary region's stack made it)
                assert condition["ForAnyValue:StringEquals"] == {
                    "kms:ResourceAliases": [f"alias/burrow/{env}/replicated"]
                }
            else:
                assert set(condition) == {"StringEquals"} and "*" not in json.dumps(statement["Resource"])
