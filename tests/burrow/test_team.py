"""A team (issue 23, item 4): its namespace is restricted, limited and closed by default; its people's
Role reads no Secrets; its workers log in as the team's own broker user on the team's own virtual
host, whose password comes from where the broker's own users' do; bad props are one line."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from burrow.app.broker_users import broker_definitions
from burrow.config.schema import MessagingConfig
from burrow.errors import PropsError
from burrow.k8s.release import terraform_unescape
from tests.support.team import SIZE, TEAMS, tenant_stack


def releases(stack: dict, namespace: str | None = None) -> dict[str, dict]:
    """The stack's helm_releases by name (in `namespace`; release names are unique per namespace)."""
    found = [r for r in stack["resource"]["helm_release"].values() if namespace in (None, r["namespace"])]
    assert len({r["name"] for r in found}) == len(found), "name the namespace: two releases share a name"
    return {r["name"]: r for r in found}


def objects(stack: dict, release: str, namespace: str | None = None) -> list[dict]:
    return yaml.safe_load(terraform_unescape(releases(stack, namespace)[release]["values"][0]))["objects"]


def by_kind(objs: list[dict], kind: str) -> list[dict]:
    return [o for o in objs if o["kind"] == kind]


def env_of(deployment: dict) -> dict[str, dict]:
    return {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


def secrets(stack: dict) -> dict[tuple[str, str], dict]:
    """Terraform's kubernetes_secret_v1s by (namespace, name)."""
    return {
        (s["metadata"]["namespace"], s["metadata"]["name"]): s
        for s in stack["resource"]["kubernetes_secret_v1"].values()
    }


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> dict:
    return tenant_stack(tmp_path_factory.mktemp("teams"))


@pytest.fixture(scope="module")
def platform_aws(tmp_path_factory) -> dict:
    return tenant_stack(tmp_path_factory.mktemp("teams-aws"), credentials_key="burrow/t/rabbitmq")


def test_a_team_namespace_is_restricted_limited_and_closed_by_default(platform):
    [namespace] = [
        n for n in platform["resource"]["kubernetes_namespace_v1"].values() if n["metadata"]["name"] == "orders"
    ]
    labels = namespace["metadata"]["labels"]
    assert {labels[f"pod-security.kubernetes.io/{mode}"] for mode in ("enforce", "audit", "warn")} == {"restricted"}
    assert labels["burrow.dev/team"] == "orders"
    defaults = objects(platform, "orders-network-defaults")
    [deny] = [p for p in by_kind(defaults, "NetworkPolicy") if p["metadata"]["name"] == "default-deny"]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": []}
    [quota] = by_kind(defaults, "ResourceQuota")
    assert quota["spec"]["hard"]["pods"] == "20" and quota["spec"]["hard"]["persistentvolumeclaims"] == "0"
    [limits] = by_kind(defaults, "LimitRange")
    assert limits["spec"]["limits"][0]["default"] == {"cpu": "500m", "memory": "512Mi"}


def test_the_teams_group_may_follow_its_workers_but_read_no_secret_exec_or_change_what_terraform_delivers(platform):
    access = objects(platform, "orders-team-access")
    [role] = by_kind(access, "Role")
    [binding] = by_kind(access, "RoleBinding")
    assert binding["metadata"]["namespace"] == role["metadata"]["namespace"] == "orders"
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "orders-developers"}
    ]
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert ("", "pods/log", "get") in granted and ("apps", "deployments", "list") in granted
    assert not [g for g in granted if "*" in g or g[1] in ("secrets", "pods/exec", "pods/attach")]
    writes = {(resource, verb) for _group, resource, verb in granted if verb not in ("get", "list", "watch")}
    assert writes == {("pods", "delete"), ("pods/portforward", "create")}


def test_a_team_worker_logs_in_as_the_teams_user_on_the_teams_virtual_host(platform):
    """Not the broker's administrator, not one of Burrow's roles: the team's own login, in its namespace."""
    for name, (exchange, queue, _key) in TEAMS.items():
        [deployment] = by_kind(objects(platform, f"{name}-worker"), "Deployment")
        env = env_of(deployment)
        assert deployment["metadata"]["namespace"] == name
        assert {
            k: env[k]["value"]
            for k in ("RABBITMQ_VHOST", "RABBITMQ_TOPOLOGY", "RABBITMQ_HOST", "RABBITMQ_QUEUE", "RABBITMQ_EXCHANGE")
        } == {
            "RABBITMQ_VHOST": name,
            "RABBITMQ_TOPOLOGY": "declare",
            "RABBITMQ_HOST": "rabbitmq.messaging.svc.cluster.local",
            "RABBITMQ_QUEUE": queue,
            "RABBITMQ_EXCHANGE": exchange,
        }
        for var in ("RABBITMQ_USERNAME", "RABBITMQ_PASSWORD"):
            assert env[var]["valueFrom"]["secretKeyRef"]["name"] == "rabbitmq-login"
        login = secrets(platform)[(name, "rabbitmq-login")]["data"]
        assert login["rabbitmq-username"] == f"team-{name}"
        assert login["rabbitmq-amqp-uri"].endswith(f"@rabbitmq.messaging.svc.cluster.local:5672/{name}")
        password = re.fullmatch(
            r"\$\{random_password\.mq_tenant-" + name + r"-password_\w+\.result\}", login["rabbitmq-password"]
        )
        assert password, login["rabbitmq-password"]


def test_the_broker_loads_each_teams_user_and_virtual_host_from_the_definitions_built_for_it(platform):
    """The definitions Secret is exactly `broker_definitions` with the teams (the function the test on
    a real broker loads), with Terraform's passwords of this broker."""
    found = secrets(platform)
    definitions = json.loads(found[("messaging", "rabbitmq-definitions")]["data"]["load_definition.json"])
    passwords = {name: found[(name, "rabbitmq-login")]["data"]["rabbitmq-password"] for name in TEAMS}
    roles = {
        role: found[("messaging", f"rabbitmq-{role}")]["data"]["rabbitmq-password"] for role in ("producer", "consumer")
    }
    [monitoring] = [u["password"] for u in definitions["users"] if u["name"] == "burrow-monitoring"]
    admin = found[("messaging", "rabbitmq-auth")]["data"]["rabbitmq-password"]
    limits = {"orders": {"max-connections": 4, "max-queues": 3}, "billing": {"max-connections": 100, "max-queues": 100}}
    assert definitions == broker_definitions(
        "burrow", admin, {**roles, "monitoring": monitoring}, MessagingConfig(), tenants=passwords, tenant_limits=limits
    )
    assert {p["vhost"]: p["value"] for p in definitions["parameters"] if p["component"] == "vhost-limits"} == limits
    assert {v["name"] for v in definitions["vhosts"]} == {"/", *TEAMS}
    team_rights = {(p["user"], p["vhost"]) for p in definitions["permissions"] if p["user"].startswith("team-")}
    assert team_rights == {(f"team-{name}", name) for name in TEAMS}


def test_the_broker_admits_each_teams_workers_and_rolls_to_load_a_new_team(platform):
    [policy] = [p for p in by_kind(objects(platform, "rabbitmq-objects"), "NetworkPolicy")]
    admitted = [rule["from"][0] for rule in policy["spec"]["ingress"]]
    for name in TEAMS:
        assert {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}},
            "podSelector": {"matchLabels": {"burrow.dev/rabbitmq-client": "rabbitmq"}},
        } in admitted
        [worker_policy] = by_kind(objects(platform, f"{name}-worker"), "NetworkPolicy")
        assert worker_policy["spec"]["egress"] == [
            {
                "to": [
                    {
                        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "messaging"}},
                        "podSelector": {
                            "matchLabels": {
                                "app.kubernetes.io/name": "rabbitmq",
                                "app.kubernetes.io/instance": "rabbitmq",
                            }
                        },
                    }
                ],
                "ports": [{"protocol": "TCP", "port": 5672}],
            }
        ]
    values = yaml.safe_load(terraform_unescape(releases(platform)["rabbitmq"]["values"][-1]))
    # a new team or new limits: new pods, which load the new definitions
    assert values["podAnnotations"] == {
        "burrow.dev/tenants": "billing(max-connections=100,max-queues=100),orders(max-connections=4,max-queues=3)"
    }
    assert values["metrics"]["serviceMonitor"]["detailed"]["vhost"] == ["/", "orders", "billing"]


def test_with_secrets_manager_no_teams_password_passes_through_terraform(platform_aws):
    assert "random_password" not in platform_aws["resource"]
    assert "kubernetes_secret_v1" not in platform_aws["resource"] or not [
        s
        for s in platform_aws["resource"]["kubernetes_secret_v1"].values()
        if s["metadata"]["name"] == "rabbitmq-login"
    ]
    [definitions] = [
        o
        for o in objects(platform_aws, "rabbitmq-credentials", "messaging")
        if o["metadata"]["name"] == "rabbitmq-definitions"
    ]
    sources = definitions["spec"]["dataFrom"]
    for name in TEAMS:
        field = f"tenant_{name}_password"
        assert {
            "extract": {"key": f"teams/{name}"},
            "rewrite": [{"regexp": {"source": "^password$", "target": field}}],
        } in sources
        rendered = json.loads(definitions["spec"]["target"]["template"]["data"]["load_definition.json"])
        assert {"name": f"team-{name}", "password": "{{ ." + field + " }}", "tags": ""} in rendered["users"]
        [login] = objects(platform_aws, "rabbitmq-login", name)
        assert login["metadata"]["namespace"] == name
        assert login["spec"]["secretStoreRef"]["name"] == f"burrow-secrets-manager-{name}"
        assert login["spec"]["dataFrom"] == [{"extract": {"key": f"teams/{name}"}}]
        assert login["spec"]["target"]["template"]["data"]["rabbitmq-username"] == f"team-{name}"


def team_on(broker_props: dict | None = None, team: dict | None = None, tmp_path=None):
    """A fresh stack with a broker in `messaging`; builds `Team` with `team` over valid props."""
    from cdktf import App, TerraformStack

    from burrow import AppNamespace, Guardrails, KubeconfigCluster, RabbitMqBroker, Team, Tier

    stack = TerraformStack(App(), "platform")
    KubeconfigCluster(kubeconfig_path="k", context="c", version="1.33").configure_providers(stack)
    Guardrails.configure(stack, Tier.DEVELOPMENT)
    broker = RabbitMqBroker(
        stack,
        "mq",
        namespace=AppNamespace(stack, "ns", {"name": "messaging"}),
        props={
            "image": {"registry": "r", "repository": "rabbitmq", "tag": "4"},
            "resources": SIZE,
            **(broker_props or {}),
        },
    )
    return (
        stack,
        broker,
        lambda id="orders", **extra: Team(
            stack, id, {"name": "orders", "groups": ["orders-developers"], **extra}, broker=broker
        ),
    )


AWS = {"credentials_key": "k", "user_keys": {"producer": "p", "consumer": "c", "monitoring": "m"}}


@pytest.mark.parametrize(
    ("broker_props", "extra", "expected"),
    [
        ({}, {"name": "Orders"}, "platform/orders: name='Orders' is invalid: String should match pattern"),
        ({}, {"groups": []}, "platform/orders: groups=[] is invalid: Tuple should have at least 1 item"),
        ({}, {"groups": ["ok", "no spaces"]}, "platform/orders: groups.1='no spaces' is invalid: String should match"),
        ({}, {"groups": ["system:authenticated"]},
         "platform/orders: groups.0='system:authenticated' is invalid: a group of the team's people, not one of "
         "Kubernetes' own system: groups"),
        ({}, {"groups": ["system:serviceaccounts"]},
         "platform/orders: groups.0='system:serviceaccounts' is invalid: a group of the team's people"),
        (
            {},
            {"quota": {"pods": 0}},
            "platform/orders: quota.pods=0 is invalid: Input should be greater than or equal to 1",
        ),
        (
            {"users_by_role": False},
            {},
            "platform/orders: broker='platform/mq' is invalid: a team's broker user is "
            "defined in the broker's definitions",
        ),
        (
            {"generate_credentials_in_cluster": True},
            {},
            "platform/orders: broker='platform/mq' is invalid: a team's broker user is "
            "defined in the broker's definitions",
        ),
        (
            {},
            {"password_key": "teams/orders"},
            "platform/orders: password_key='teams/orders' is invalid: none: this broker's passwords are Terraform's",
        ),
        (
            AWS,
            {},
            "platform/orders: password_key=None is invalid: the Secrets Manager secret (field password) of the "
            "team's broker user",
        ),
    ],
)
def test_bad_team_props_are_one_line_naming_the_construct_and_build_nothing(broker_props, extra, expected):
    stack, _broker, team = team_on(broker_props)
    with pytest.raises(PropsError) as refused:
        team(**extra)
    assert str(refused.value).startswith(expected), str(refused.value)
    assert "\n" not in str(refused.value)
    assert stack.node.try_find_child("orders") is None


def test_two_teams_of_one_name_on_one_broker_are_refused():
    stack, _broker, team = team_on()
    team()
    with pytest.raises(PropsError) as refused:
        team("orders-again")
    assert str(refused.value) == (
        "platform/orders-again: name='orders' is invalid: platform/orders/broker-user is "
        "already tenant 'orders' of platform/mq: each team has a name (virtual host) of its own"
    )
    assert stack.node.try_find_child("orders-again") is None


def test_a_worker_runs_where_its_teams_login_is_and_on_its_teams_broker():
    from burrow import AppNamespace, QueueWorker, RabbitMqBroker

    stack, broker, team = team_on()
    orders = team()
    props = {
        "image": {"registry": "r", "repository": "w", "tag": "1"},
        "resources": SIZE,
        "messaging": {"exchange": "e", "queue": "q", "routing_key": "k"},
    }
    elsewhere = AppNamespace(stack, "elsewhere", {"name": "elsewhere"})
    with pytest.raises(PropsError) as refused:
        QueueWorker(stack, "w", namespace=elsewhere, broker=broker, tenant=orders.tenant, props=props)
    assert str(refused.value) == (
        "platform/w: namespace='elsewhere' is invalid: the login of platform/orders/broker-user "
        "is in namespace orders: run the team's workers there (Team.namespace)"
    )
    other = RabbitMqBroker(
        stack,
        "other",
        namespace=elsewhere,
        props={
            "image": {"registry": "r", "repository": "rabbitmq", "tag": "4"},
            "resources": SIZE,
            "release_name": "other",
        },
    )
    with pytest.raises(
        PropsError,
        match=r"^platform/w: tenant='platform/orders/broker-user' is invalid: a user of "
        r"platform/mq, not of platform/other",
    ):
        QueueWorker(stack, "w", namespace=orders.namespace, broker=other, tenant=orders.tenant, props=props)
    with pytest.raises(PropsError, match=r"^platform/w: role='worker' is invalid: .* make them a Team's"):
        QueueWorker(stack, "w", namespace=orders.namespace, broker=broker, props=props)
    assert stack.node.try_find_child("w") is None


def test_a_team_of_another_stack_is_refused_when_terraform_generates_the_passwords():
    from cdktf import TerraformStack

    from burrow import KubeconfigCluster, Team

    stack, broker, _team = team_on()
    elsewhere = TerraformStack(stack.node.scope, "team-stack")
    KubeconfigCluster(kubeconfig_path="k", context="c", version="1.33").configure_providers(elsewhere)
    with pytest.raises(
        PropsError,
        match=r"^team-stack/orders: broker='platform/mq' is invalid: a broker whose "
        r"passwords Terraform generates has its tenants in its own stack",
    ):
        Team(elsewhere, "orders", {"name": "orders", "groups": ["g"]}, broker=broker)


def test_a_team_workers_queue_alerts_watch_its_queue_where_the_broker_reports_it(tmp_path):
    """The broker's per-queue metrics carry the broker's namespace and the virtual host, not the
    worker's namespace: alerts selecting the worker's would never fire."""
    _stack, _broker, team = team_on()
    worker = team().worker(
        "intake",
        {
            "image": {"registry": "r", "repository": "w", "tag": "1"},
            "resources": SIZE,
            "messaging": {"exchange": "e", "queue": "orders.intake", "routing_key": "k"},
            "alerts": {},
        },
    )
    [rule] = by_kind(list(worker.objects), "PrometheusRule")
    expressions = [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"] if "queue" in r["expr"]]
    assert expressions and all(
        '{namespace="messaging", vhost="orders", queue="orders.intake"}' in e for e in expressions
    )


@pytest.mark.parametrize("stack", ["platform", "platform_aws"])
def test_every_object_a_team_gets_passes_strict_schema_validation(stack, request):
    from burrow.k8s.validate import validate_objects

    synthesized = request.getfixturevalue(stack)
    delivered = [
        obj
        for release in synthesized["resource"]["helm_release"].values()
        if release["name"] != "rabbitmq"
        for obj in yaml.safe_load(terraform_unescape(release["values"][0]))["objects"]
    ]
    assert {"Role", "RoleBinding", "ResourceQuota", "LimitRange", "NetworkPolicy", "Deployment"} <= {
        o["kind"] for o in delivered
    }
    assert validate_objects(delivered, "1.33") == []
