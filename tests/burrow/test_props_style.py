"""One props style: `AppNamespace` and `KubernetesObjects` take `(scope, id, props)` with a frozen
`*Props` model or a mapping of its fields, a bad prop is one line naming the construct path, and
every construct that delivers Kubernetes objects has one escape-hatch shape (`objects`, `delivery`)."""

from __future__ import annotations

import json

import pytest
import yaml

from burrow.k8s.release import terraform_unescape
from tests.burrow.test_team_workers import team, worker_props

POD = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "orders"}}


def stack_only(tmp_path):
    from cdktf import App, TerraformStack

    from burrow import Guardrails, KubeconfigCluster, Tier

    app = App(outdir=str(tmp_path))
    stack = TerraformStack(app, "team")
    KubeconfigCluster(kubeconfig_path="k", context="c", version="1.33").configure_providers(stack)
    Guardrails.configure(stack, Tier.DEVELOPMENT)
    return app, stack


def released(tmp_path, release: str) -> list[dict]:
    """The objects the release named `release` delivers, as synthesized."""
    stack = json.loads((tmp_path / "stacks" / "team" / "cdk.tf.json").read_text())
    [found] = [r for r in stack["resource"]["helm_release"].values() if r["name"] == release]
    return yaml.safe_load(terraform_unescape(found["values"][0]))["objects"]


def test_the_props_models_are_public_frozen_and_forbid_unknown_fields():
    from pydantic import ValidationError

    from burrow import AppNamespaceProps, KubernetesObjectsProps, PropsError

    props = AppNamespaceProps(name="orders")
    assert (props.default_deny, props.labels, props.quota) == (True, {}, None)
    with pytest.raises(ValidationError, match="frozen"):
        props.name = "other"  # type: ignore[misc]
    with pytest.raises(
        PropsError, match=r"^KubernetesObjectsProps: obj=\[\] is invalid: unknown field; the fields of "
    ):
        KubernetesObjectsProps(release_name="extras", namespace="orders", obj=[])


@pytest.mark.parametrize("as_model", [False, True])
def test_a_namespace_takes_its_props_as_a_mapping_or_the_model(tmp_path, as_model):
    from burrow import AppNamespace, AppNamespaceProps

    app, stack = stack_only(tmp_path)
    props = {"name": "orders", "labels": {"team.example/owner": "orders"}, "quota": {"pods": 30}}
    namespace = AppNamespace(stack, "ns", AppNamespaceProps.model_validate(props) if as_model else props)
    assert namespace.name == "orders" and namespace.labels["team.example/owner"] == "orders"
    app.synth()
    quota = next(o for o in released(tmp_path, "orders-network-defaults") if o["kind"] == "ResourceQuota")
    assert quota["spec"]["hard"]["pods"] == "30"


NS = "AppNamespace"
OBJECTS = "KubernetesObjects"


@pytest.mark.parametrize(
    ("construct", "props", "line"),
    [
        (NS, {"name": "Orders"}, "team/ns: name='Orders' is invalid: String should match pattern"),
        (
            NS,
            {"name": "orders", "default_deny": "maybe"},
            "team/ns: default_deny='maybe' is invalid: Input should be a valid boolean",
        ),
        (
            NS,
            {"name": "orders", "quota": {"pods": 0}},
            "team/ns: quota.pods=0 is invalid: Input should be greater than or equal to 1",
        ),
        (
            NS,
            {"name": "orders", "quotas": {}},
            "team/ns: quotas={} is invalid: unknown field; the fields of AppNamespaceProps are name, ",
        ),
        (NS, {}, "team/ns: name=(missing) is invalid: required, and not set"),
        (
            NS,
            {"name": "n" * 37},
            f"team/ns: name='{'n' * 37}' is invalid: at most 36 characters: the namespace's object release is "
            f"'{'n' * 37}-network-defaults', and Helm allows 53",
        ),
        (
            OBJECTS,
            {"release_name": "Extras", "namespace": "orders"},
            "team/ns: release_name='Extras' is invalid: String should match",
        ),
        (OBJECTS, {"release_name": "e" * 54, "namespace": "orders"}, "team/ns: release_name='eeee"),
        (
            OBJECTS,
            {"release_name": "extras", "namespace": "orders", "objects": [{"kind": "Pod"}]},
            "team/ns: objects.0={'kind': 'Pod'} is invalid: a Kubernetes object needs apiVersion",
        ),
        (
            OBJECTS,
            {"release_name": "extras", "namespace": "orders", "objects": ["kind: Pod"]},
            "team/ns: objects.0='kind: Pod' is invalid: Input should be an instance of dict",
        ),
        (
            OBJECTS,
            {"release_name": "extras", "namespace": "orders", "object": []},
            "team/ns: object=[] is invalid: unknown field; the fields of KubernetesObjectsProps are release_name, namespace, objects",
        ),
    ],
)
def test_a_bad_prop_is_one_line_with_the_construct_path(tmp_path, construct, props, line):
    import burrow

    _, stack = stack_only(tmp_path)
    with pytest.raises(burrow.PropsError) as refused:
        getattr(burrow, construct)(stack, "ns", props)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(line), message
    assert stack.node.try_find_child("ns") is None  # nothing half-built is left in the tree


def test_objects_given_are_the_ones_delivered_so_in_place_edits_count(tmp_path):
    """Validating the props must not copy the caller's dicts: an edit before synth is delivered."""
    from burrow import KubernetesObjects, KubernetesObjectsProps

    app, stack = stack_only(tmp_path)
    mine = json.loads(json.dumps(POD))
    extras = KubernetesObjects(stack, "extras", {"release_name": "extras", "namespace": "orders", "objects": [mine]})
    typed = KubernetesObjects(stack, "typed", KubernetesObjectsProps(release_name="typed", namespace="orders"))
    assert extras.objects[0] is mine and typed.objects == ()
    mine["data"] = {"edited": "yes"}
    app.synth()
    assert released(tmp_path, "extras")[0]["data"] == {"edited": "yes"}


def test_every_construct_that_delivers_objects_has_one_escape_hatch_shape(tmp_path):
    """`objects` (a tuple of native dicts, assignable before synth) and `delivery` (their release),
    on a worker, a broker, a namespace and Karpenter's node pool alike; what is assigned is delivered."""
    from burrow import KubernetesObjects, QueueWorker
    from burrow.addons.karpenter import KarpenterNodePool

    app, stack, namespace, broker = team(tmp_path)
    worker = QueueWorker(stack, "intake", namespace=namespace, broker=broker, props=worker_props())
    pool = KarpenterNodePool(stack, "pool", objects=[{**POD, "metadata": {"name": "pool"}}], depends_on=[])
    for construct in (worker, broker, namespace, pool):
        assert isinstance(construct.objects, tuple) and all(isinstance(o, dict) for o in construct.objects)
        assert isinstance(construct.delivery, KubernetesObjects)
        assert construct.objects is construct.delivery.objects
        construct.objects = (*construct.objects, {**POD, "metadata": {"name": f"added-to-{construct.node.id}"}})
    app.synth()
    for release in ("intake", "rabbitmq-objects", "orders-network-defaults", "burrow-node-pool"):
        names = [o["metadata"]["name"] for o in released(tmp_path, release)]
        assert names[-1].startswith("added-to-"), (release, names)


def test_a_namespace_without_objects_has_none_to_replace(tmp_path):
    from burrow import AppNamespace

    _, stack = stack_only(tmp_path)
    namespace = AppNamespace(stack, "ns", {"name": "orders", "default_deny": False})
    assert (namespace.objects, namespace.delivery) == ((), None)
    with pytest.raises(AttributeError, match="delivers no Kubernetes objects"):
        namespace.objects = ({**POD},)


def test_a_broker_answers_for_its_objects_as_edited(tmp_path):
    """The guardrails read the broker's `objects` after an edit: dropping its NetworkPolicy is seen."""
    from burrow.policy.facts import Policed

    _, _, _, broker = team(tmp_path)
    assert isinstance(broker, Policed)
    broker.objects = tuple(o for o in broker.objects if o["kind"] != "NetworkPolicy")
    assert [o["kind"] for o in broker.policy_facts().objects] == [o["kind"] for o in broker.objects]
    assert "NetworkPolicy" not in [o["kind"] for o in broker.policy_facts().objects]


def test_every_public_construct_takes_scope_id_props_and_its_references_by_keyword():
    """One signature for every construct `import burrow` exports (and the worker's presets):
    `(scope, id, props, *, <the constructs it builds on>)`, `props` a `*Props` model or a mapping."""
    import inspect

    import burrow
    from constructs import Construct

    constructs = {name: getattr(burrow, name) for name in burrow.__all__
                  if inspect.isclass(getattr(burrow, name)) and issubclass(getattr(burrow, name), Construct)}
    assert {"AppNamespace", "RabbitMqBroker", "QueueWorker", "Team", "EksCluster", "PublicIngress"} <= set(constructs)
    callables = {**{name: cls.__init__ for name, cls in constructs.items()},
                 "QueueWorker.producer": burrow.QueueWorker.producer, "QueueWorker.consumer": burrow.QueueWorker.consumer}
    shapes = {}
    for name, function in callables.items():
        parameters = [p for p in inspect.signature(function).parameters.values() if p.name not in ("self", "cls")]
        positional = [p.name for p in parameters if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
        others = {p.kind for p in parameters if p.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD}
        shapes[name] = (positional, others <= {inspect.Parameter.KEYWORD_ONLY})
    assert {name: shape for name, shape in shapes.items() if shape != (["scope", "id", "props"], True)} == {}
    for name in constructs:  # each props type is exported beside its construct
        assert hasattr(burrow, f"{name}Props"), f"{name}Props is not exported"


def test_a_wrong_object_where_a_construct_is_expected_is_one_line_naming_the_argument(tmp_path):
    from burrow import PropsError, QueueWorker, Team

    app, stack, namespace, broker = team(tmp_path)
    with pytest.raises(PropsError) as refused:
        QueueWorker(stack, "intake", worker_props(), namespace=namespace, broker="rabbitmq.messaging")
    assert str(refused.value) == ("team/intake: broker='rabbitmq.messaging' is invalid: broker takes a construct of "
                                  "type RabbitMqBroker, not str")
    with pytest.raises(PropsError, match="^team/orders: broker=None is invalid: broker takes a construct of type"):
        Team(stack, "orders", {"name": "orders", "groups": ["g"]}, broker=None)
    assert stack.node.try_find_child("intake") is None and stack.node.try_find_child("orders") is None
