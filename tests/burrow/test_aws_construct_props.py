"""One props style for the AWS constructs and the public Ingress: `ContainerRegistry`, `StateStorage`,
`BackupStorage`, `RegionPeering`, `DeliveryRoles`, `Network`, `EksCluster`, `PublicEntry` and
`PublicIngress` take
`(scope, id, props)` with a frozen `*Props` model or a mapping of its fields (data only: the constructs
they build on are keyword arguments beside the props); a bad prop or a wrong object is one line naming
the construct path, the field or argument, the value and what is allowed, raised before the construct
joins the tree and before Terraform or AWS could notice."""

from __future__ import annotations

import json

import pytest

from tests.support.team import team_stack

ACCOUNT = "210987654321"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/burrow-qa-deploy"
VELERO = f"arn:aws:iam::{ACCOUNT}:role/burrow-qa-velero"
EDGE = {
    "cluster_name": "burrow-qa",
    "region": "eu-west-1",
    "vpc_id": "vpc-1",
    "load_balancer_role_arn": "arn:r",
    "dns_role_arn": "arn:d",
    "zone_id": "Z1",
    "zone_name": "example.com",
    "host": "events.example.com",
    "region_host": "eu-west-1.events.example.com",
}


class Aws:
    """A stack `aws` in eu-west-1 with a provider for us-east-1, and what the constructs refer to
    (networks and a cluster) made on first use."""

    def __init__(self) -> None:
        from cdktf import TerraformStack, Testing
        from cdktf_cdktf_provider_aws.provider import AwsProvider

        self.stack = TerraformStack(Testing.app(), "aws")
        AwsProvider(self.stack, "aws", region="eu-west-1")
        self.us_east = AwsProvider(self.stack, "us-east-1", region="us-east-1", alias="us-east-1")
        self._made: dict = {}

    def network(self, id: str = "network", cidr: str = "10.0.0.0/16"):
        from burrow import Network

        if id not in self._made:
            self._made[id] = Network(
                self.stack, id, {**MAPPINGS["Network"](self), "name": f"burrow-{id}", "vpc_cidr": cidr}
            )
        return self._made[id]

    def cluster(self):
        from burrow import EksCluster

        if "eks" not in self._made:
            self._made["eks"] = EksCluster(self.stack, "eks", MAPPINGS["EksCluster"](self))
        return self._made["eks"]

    def synth(self) -> dict:
        from cdktf import Testing

        return json.loads(Testing.synth(self.stack))


def state_access() -> dict:
    return {"account_id": ACCOUNT, "deployers": [DEPLOYER], "planners": [f"arn:aws:iam::{ACCOUNT}:role/burrow-qa-plan"]}


# Each construct's props as a mapping that builds it (object references filled in from `aws`).
MAPPINGS = {
    "ContainerRegistry": lambda aws: {"name": "orders/intake", "keep_images": 5},
    "StateStorage": lambda aws: {"bucket_name": "orders-qa-tfstate", "access": state_access()},
    "BackupStorage": lambda aws: {
        "env_name": "orders-qa",
        "account_id": ACCOUNT,
        "retention_days": 14,
        "writers": [VELERO],
        "managers": [DEPLOYER],
    },
    "RegionPeering": lambda aws: {
        "name": "orders",
        "cidr": "10.0.0.0/16",
        "peer_cidr": "10.1.0.0/16",
        "peer_region": "us-east-1",
    },
    "DeliveryRoles": lambda aws: {
        "repository": "orders/platform",
        "name": "orders-qa",
        "environment": "qa",
        "account_id": ACCOUNT,
        "state_bucket": "orders-qa-tfstate",
        "state_prefix": "qa",
        "repositories": [f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/orders/intake"],
    },
    "Network": lambda aws: {"name": "orders-qa", "cluster_name": "orders-qa", "region": "eu-west-1"},
    "EksCluster": lambda aws: {
        "name": "burrow-qa",
        "kubernetes_version": "1.33",
        "region": "eu-west-1",
        "subnet_ids": ["subnet-a", "subnet-b"],
        "node_groups": {"core": {"instance_types": ["m6i.large"], "min_size": 2, "max_size": 4, "desired_size": 2}},
    },
    "PublicEntry": lambda aws: {
        "region": "eu-west-1",
        "zone_id": "Z0123456789ABC",
        "zone_name": "example.com",
        "host": "orders.example.com",
    },
}


# The constructs each construct builds on: keyword arguments beside its props.
REFERENCES = {
    "RegionPeering": lambda aws: {
        "network": aws.network(),
        "peer": aws.network("peer", "10.1.0.0/16"),
        "peer_provider": aws.us_east,
    },
    "PublicEntry": lambda aws: {"cluster": aws.cluster(), "network": aws.network()},
}


def arguments(construct: str, aws: Aws, changes: dict | None = None) -> tuple[dict, dict]:
    """(props, references) of `construct`'s good call, with `changes` applied to whichever holds the key."""
    props, references = MAPPINGS[construct](aws), REFERENCES.get(construct, lambda _aws: {})(aws)
    for key, value in (changes or {}).items():
        (references if key in references else props)[key] = value
    return props, references


def resources(synthesized: dict, kind: str) -> list[dict]:
    return list(synthesized["resource"].get(kind, {}).values())


# One resource type per construct and attributes one of its resources has, as the mapping asked.
EXPECTED = {
    "ContainerRegistry": ("aws_ecr_repository", {"name": "orders/intake", "image_tag_mutability": "IMMUTABLE"}),
    "StateStorage": ("aws_kms_alias", {"name": "alias/orders-qa-tfstate"}),
    "BackupStorage": ("aws_s3_bucket", {"bucket": f"burrow-orders-qa-backups-{ACCOUNT}"}),
    "RegionPeering": (
        "aws_vpc_peering_connection",
        {"peer_region": "us-east-1", "auto_accept": False, "tags": {"Name": "orders-to-us-east-1"}},
    ),
    "DeliveryRoles": ("aws_iam_role", {"name": "orders-qa-deploy"}),
    "Network": ("aws_vpc", {"cidr_block": "10.0.0.0/16", "tags": {"Name": "orders-qa"}}),
    "EksCluster": ("aws_eks_cluster", {"name": "burrow-qa", "version": "1.33"}),
    "PublicEntry": (
        "aws_acm_certificate",
        {"domain_name": "orders.example.com", "subject_alternative_names": ["eu-west-1.orders.example.com"]},
    ),
}


@pytest.mark.parametrize("construct", sorted(MAPPINGS))
def test_each_aws_construct_is_built_from_a_mapping_or_the_model_alike(construct):
    """The mapping and the model built from it synthesize the same resources, with what the mapping
    asked for; the construct keeps its props as the frozen model, defaults filled in."""
    import burrow

    kind, wanted = EXPECTED[construct]
    made = []
    for as_model in (False, True):
        aws = Aws()
        props, references = arguments(construct, aws)
        model = getattr(burrow, f"{construct}Props")
        given = model.model_validate(props) if as_model else props
        built = getattr(burrow, construct)(aws.stack, "thing", given, **references)
        assert isinstance(built.props, model) and built.props.model_config["frozen"]
        made.append(resources(aws.synth(), kind))
    assert made[0] == made[1]
    assert any(resource.items() >= wanted.items() for resource in made[0]), made[0]


def test_a_peering_routes_each_side_to_the_other_and_a_registry_keeps_its_count():
    import burrow

    aws = Aws()
    props, references = arguments("RegionPeering", aws)
    burrow.RegionPeering(aws.stack, "peering", props, **references)
    burrow.ContainerRegistry(aws.stack, "registry", {"name": "orders/intake", "keep_images": 5})
    synthesized = aws.synth()
    routes = {
        r["destination_cidr_block"] for r in resources(synthesized, "aws_route") if "vpc_peering_connection_id" in r
    }
    assert routes == {"10.0.0.0/16", "10.1.0.0/16"}
    [policy] = resources(synthesized, "aws_ecr_lifecycle_policy")
    assert json.loads(policy["policy"])["rules"][0]["selection"]["countNumber"] == 5


# (construct, changes to its good mapping, the line's start after "<path>: ")
BAD = [
    ("ContainerRegistry", {"name": "Orders/Intake"}, "name='Orders/Intake' is invalid: String should match pattern"),
    ("ContainerRegistry", {"keep_images": 0}, "keep_images=0 is invalid: Input should be greater than or equal to 1"),
    (
        "StateStorage",
        {"bucket_name": "Orders_State"},
        "bucket_name='Orders_State' is invalid: an S3 bucket name: 3 to 63",
    ),
    (
        "StateStorage",
        {"bucket_name": "orders.qa.tfstate"},
        "props=(the props together) is invalid: with access, the bucket's key is aliased 'alias/orders.qa.tfstate', "
        "and a KMS alias allows no '.'",
    ),
    (
        "StateStorage",
        {"noncurrent_days": 0},
        "noncurrent_days=0 is invalid: Input should be greater than or equal to 1",
    ),
    ("BackupStorage", {"retention_days": 0}, "retention_days=0 is invalid: Input should be greater than or equal to 1"),
    (
        "BackupStorage",
        {"env_name": "x" * 40},
        f"env_name='{'x' * 40}' is invalid: it names the bucket 'burrow-{'x' * 40}-backups-<account_id>', which must be "
        "an S3 bucket name",
    ),
    ("BackupStorage", {"account_id": "2109876543"}, "account_id='2109876543' is invalid: String should match pattern"),
    (
        "BackupStorage",
        {"writers": ["burrow-qa-velero"]},
        "writers.0='burrow-qa-velero' is invalid: an ARN (arn:<partition>:<service>:<region>:<account>:<resource>), "
        "or a reference to one",
    ),
    (
        "BackupStorage",
        {"writers": []},
        "props=(the props together) is invalid: managers are admitted only beside writers",
    ),
    (
        "RegionPeering",
        {"peer_cidr": "10.0.128.0/17"},
        "props=(the props together) is invalid: cidr 10.0.0.0/16 and peer_cidr 10.0.128.0/17 overlap",
    ),
    ("RegionPeering", {"cidr": "10.0.0.1/16"}, "cidr='10.0.0.1/16' is invalid: an IPv4 network in CIDR notation"),
    (
        "RegionPeering",
        {"peer_region": "eu-central-1"},
        "peer_provider='us-east-1' is invalid: a provider for peer_region 'eu-central-1': the peering must be "
        "accepted in the peer's region",
    ),
    (
        "RegionPeering",
        {"peer": "vpc-0123"},
        "peer='vpc-0123' is invalid: peer takes a construct of type Network, not str",
    ),
    (
        "RegionPeering",
        {"peer_provider": None},
        "peer_provider=None is invalid: peer_provider takes a construct of type AwsProvider, not NoneType",
    ),
    (
        "DeliveryRoles",
        {"repository": "platform"},
        "repository='platform' is invalid: owner/name of the GitHub repository whose workflows assume the roles",
    ),
    ("DeliveryRoles", {"name": "o" * 56}, f"name='{'o' * 56}' is invalid: String should match pattern"),
    ("DeliveryRoles", {"state_bucket": "orders..qa"}, "state_bucket='orders..qa' is invalid: an S3 bucket name"),
    ("Network", {"vpc_cidr": "10.0.0.0/25"}, "vpc_cidr='10.0.0.0/25' is invalid: the VPC needs at least a /24"),
    (
        "Network",
        {"availability_zones": 3, "vpc_cidr": "10.0.0.0/20"},
        "props=(the props together) is invalid: 6 subnets of /20 (public and private per zone) do not fit in "
        "10.0.0.0/20",
    ),
    ("Network", {"cluster_name": "orders qa"}, "cluster_name='orders qa' is invalid: String should match pattern"),
    (
        "EksCluster",
        {"name": "o" * 57},
        f"name='{'o' * 57}' is invalid: at most 56 characters: its IAM roles are named <name>-cluster, <name>-node, "
        "<name>-ebs-csi, and IAM allows 64",
    ),
    (
        "EksCluster",
        {"kubernetes_version": "1.21"},
        "kubernetes_version='1.21' is invalid: a Kubernetes version EKS runs today (standard or extended support): ",
    ),
    (  # released, but out of extended support since 2026-03-23: EKS no longer runs it
        "EksCluster",
        {"kubernetes_version": "1.29"},
        "kubernetes_version='1.29' is invalid: a Kubernetes version EKS runs today (standard or extended support): ",
    ),
    ("EksCluster", {"subnet_ids": []}, "subnet_ids=[] is invalid: Tuple should have at least 1 item"),
    (
        "EksCluster",
        {"api_access": {"deploy_from": "internet"}},
        "api_access={'deploy_from': 'internet'} is invalid: deploy_from: internet needs public_cidrs",
    ),
    (
        "EksCluster",
        {"node_groups": {"core": {"instance_types": ["m6i.large"], "min_size": 3, "max_size": 2, "desired_size": 2}}},
        "node_groups.core={'instance_types': ['m6i.large'], 'min_size': 3, 'max_size': 2, 'desired_size': 2} is "
        "invalid: min_size (3) exceeds max_size (2)",
    ),
    (
        "EksCluster",
        {"admins": [DEPLOYER, DEPLOYER]},
        f"admins=['{DEPLOYER}', '{DEPLOYER}'] is invalid: lists a principal twice",
    ),
    (
        "PublicEntry",
        {"host": "orders.example.org"},
        "props=(the props together) is invalid: orders.example.org not inside zone_name 'example.com'",
    ),
    (
        "PublicEntry",
        {"cluster": "burrow-qa"},
        "cluster='burrow-qa' is invalid: cluster takes a construct of type EksCluster, not str",
    ),
    (
        "PublicEntry",
        {"network": "vpc-0123"},
        "network='vpc-0123' is invalid: network takes a construct of type Network, not str",
    ),
    ("PublicEntry", {"region": "Ireland"}, "region='Ireland' is invalid: String should match pattern"),
    ("PublicEntry", {"zone_id": "example.com"}, "zone_id='example.com' is invalid: a Route 53 hosted zone id"),
]


@pytest.mark.parametrize(("construct", "changes", "line"), BAD, ids=[f"{c}-{next(iter(ch))}" for c, ch, _ in BAD])
def test_a_bad_prop_is_one_line_with_the_construct_path_and_nothing_is_built(construct, changes, line):
    import burrow

    aws = Aws()
    props, references = arguments(construct, aws, changes)
    before = {child.node.id for child in aws.stack.node.children}
    with pytest.raises(burrow.PropsError) as refused:
        getattr(burrow, construct)(aws.stack, "thing", props, **references)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"aws/thing: {line}"), message
    assert refused.value.__cause__ is None  # no pydantic report chained
    assert refused.value.__context__ is None or refused.value.__suppress_context__
    assert {child.node.id for child in aws.stack.node.children} == before  # nothing half-built (no state key)


def test_a_props_model_built_beforehand_names_its_class():
    from burrow import ContainerRegistryProps, PropsError, RegionPeeringProps

    with pytest.raises(PropsError) as refused:
        ContainerRegistryProps(name="orders/intake", keep_images=0)
    assert (
        str(refused.value)
        == "ContainerRegistryProps: keep_images=0 is invalid: Input should be greater than or equal to 1"
    )
    with pytest.raises(PropsError, match=r"^RegionPeeringProps: cidr=\(missing\) is invalid: required"):
        RegionPeeringProps.model_validate({"name": "orders"})


def test_object_references_are_kept_as_given():
    """A construct holds the very constructs it was given (not copies): it refers to them."""
    import burrow

    aws = Aws()
    props, references = arguments("RegionPeering", aws)
    peering = burrow.RegionPeering(aws.stack, "peering", props, **references)
    assert (peering.network, peering.peer, peering.peer_provider) == tuple(references.values())
    assert peering.network is references["network"] and peering.peer_provider is aws.us_east


def test_a_network_is_not_peered_with_itself():
    import burrow

    aws = Aws()
    props, references = arguments("RegionPeering", aws, {"peer": aws.network()})
    with pytest.raises(burrow.PropsError) as refused:
        burrow.RegionPeering(aws.stack, "peering", props, **references)
    assert str(refused.value) == (
        "aws/peering: peer='aws/network' is invalid: the same Network as network: a VPC is not peered with itself"
    )
    assert aws.stack.node.try_find_child("peering") is None


@pytest.mark.parametrize("construct", ["RegionPeering", "PublicEntry", "PublicIngress"])
def test_props_hold_data_and_the_references_are_keyword_arguments(construct):
    """One props style: the props model has a JSON schema (it holds data only, no construct), and the
    constructs it builds on are keyword-only arguments of the constructor."""
    import inspect

    import burrow

    references = {"PublicIngress": {"namespace", "producer"}}.get(construct) or set(REFERENCES[construct](Aws()))
    getattr(burrow, f"{construct}Props").model_json_schema()
    parameters = inspect.signature(getattr(burrow, construct).__init__).parameters
    assert list(parameters)[:4] == ["self", "scope", "id", "props"]
    assert {name for name, p in parameters.items() if p.kind is p.KEYWORD_ONLY} >= references
    assert references.isdisjoint(getattr(burrow, f"{construct}Props").model_fields)


# --- PublicIngress: a producer's Ingress, from its worker, namespace and the region's edge --------


def ingress_props(**changes) -> dict:
    return {"edge": EDGE, "load_balancer_cidrs": ["10.0.0.0/24"], **changes}


def ingress_references(worker, **changes) -> dict:
    from cdktf import TerraformStack

    return {"namespace": TerraformStack.of(worker).node.find_child("ns"), "producer": worker, **changes}


def test_a_public_ingress_routes_to_its_producer_from_a_mapping(tmp_path):
    from cdktf import TerraformStack

    from burrow import PublicIngress

    _app, worker = team_stack(tmp_path, tier=None)
    public = PublicIngress(
        TerraformStack.of(worker),
        "public",
        ingress_props(allowed_cidrs=["192.0.2.0/24"], tls=False),
        **ingress_references(worker),
    )
    assert public.producer is worker and public.namespace.name == "team"
    ingress, policy = public.objects
    assert public.delivery.namespace == "team" and public.delivery.release_name == "burrow-ingress"
    annotations = ingress["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/healthcheck-path"] == worker.props.readiness_path == "/readyz"
    assert annotations["alb.ingress.kubernetes.io/inbound-cidrs"] == "192.0.2.0/24"
    assert "tls" not in ingress["spec"] and json.loads(annotations["alb.ingress.kubernetes.io/listen-ports"]) == [
        {"HTTP": 80}
    ]
    backends = {p["backend"]["service"]["name"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]}
    ports = {p["backend"]["service"]["port"]["number"] for r in ingress["spec"]["rules"] for p in r["http"]["paths"]}
    assert (backends, ports) == ({"consumer"}, {worker.props.port})
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= worker.labels.items()
    assert policy["spec"]["ingress"][0]["from"] == [{"ipBlock": {"cidr": "10.0.0.0/24"}}]


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        ({"load_balancer_cidrs": ["10.0.0.0/33"]}, "load_balancer_cidrs.0='10.0.0.0/33' is invalid: an IPv4 network"),
        ({"load_balancer_cidrs": []}, "load_balancer_cidrs=[] is invalid: Tuple should have at least 1 item"),
        ({"allowed_cidrs": ["anywhere"]}, "allowed_cidrs.0='anywhere' is invalid: an IPv4 network"),
        (
            {"ssl_policy": "ELBSecurityPolicy-2016-08"},
            "ssl_policy='ELBSecurityPolicy-2016-08' is invalid: Input should be",
        ),
        ({"edge": {"host": "events.example.com"}}, "edge.cluster_name=(missing) is invalid: required"),
        (
            {"producer": "consumer"},
            "producer='consumer' is invalid: producer takes a construct of type QueueWorker, not str",
        ),
        (
            {"namespace": "team"},
            "namespace='team' is invalid: namespace takes a construct of type AppNamespace, not str",
        ),
    ],
)
def test_a_bad_public_ingress_prop_is_one_line_with_the_construct_path(tmp_path, changes, line):
    from cdktf import TerraformStack

    from burrow import PropsError, PublicIngress

    _app, worker = team_stack(tmp_path, tier=None)
    stack = TerraformStack.of(worker)
    references = {key: changes.pop(key) for key in ("namespace", "producer") if key in changes}
    with pytest.raises(PropsError) as refused:
        PublicIngress(stack, "public", ingress_props(**changes), **ingress_references(worker, **references))
    assert "\n" not in str(refused.value) and str(refused.value).startswith(f"team/public: {line}"), str(refused.value)
    assert stack.node.try_find_child("public") is None


def test_a_public_ingress_refuses_a_producer_of_another_namespace(tmp_path):
    from cdktf import TerraformStack

    from burrow import AppNamespace, PropsError, PublicIngress

    _app, worker = team_stack(tmp_path, tier=None)
    stack = TerraformStack.of(worker)
    other = AppNamespace(stack, "other", {"name": "other"})
    with pytest.raises(PropsError) as refused:
        PublicIngress(stack, "public", ingress_props(), **ingress_references(worker, namespace=other))
    assert str(refused.value) == (
        "team/public: namespace='other' is invalid: the producer 'consumer' runs in namespace 'team': an Ingress "
        "routes only to a Service of its own namespace"
    )
    assert stack.node.try_find_child("public") is None


# --- Network and EksCluster: the environment's settings are their props' fields ------------------


def test_network_and_cluster_props_are_the_settings_with_the_same_defaults():
    """`NetworkProps` is a `NetworkConfig` and `EksClusterProps` an `EksClusterSettings` (the fields the
    environment's `network` and `cluster.eks` sections share with them), so each default has one home;
    the cluster's props do not take what `EksCluster` does not build (Karpenter's settings)."""
    from burrow import EksClusterConfig, EksClusterProps, NetworkConfig, NetworkProps, PropsError
    from burrow.cluster.settings import EksClusterSettings

    network = NetworkProps.model_validate(MAPPINGS["Network"](None))
    assert isinstance(network, NetworkConfig)
    assert network.model_dump(include=set(NetworkConfig.model_fields)) == NetworkConfig().model_dump()
    assert (network.public_subnet_cidrs, network.node_discovery) == (["10.0.0.0/20", "10.0.16.0/20"], False)
    cluster = EksClusterProps.model_validate(MAPPINGS["EksCluster"](None))
    assert isinstance(cluster, EksClusterSettings) and issubclass(EksClusterConfig, EksClusterSettings)
    assert cluster.log_types == EksClusterConfig(node_groups=cluster.node_groups).log_types
    assert (cluster.api_access.public, cluster.admins) == (False, ())
    with pytest.raises(PropsError, match=r"^EksClusterProps: karpenter=\{\} is invalid: unknown field"):
        EksClusterProps.model_validate({**MAPPINGS["EksCluster"](None), "karpenter": {}})
    with pytest.raises(PropsError) as refused:
        NetworkProps(**MAPPINGS["Network"](None), nat="both")
    assert str(refused.value) == "NetworkProps: nat='both' is invalid: Input should be 'single' or 'per_az'"


def test_a_cluster_in_a_network_takes_its_private_subnets_as_references():
    """`subnet_ids` are cdktf references: the control plane and the node groups use the network's
    private subnets, which carry the cluster's tag and, with `node_discovery`, Karpenter's."""
    from burrow import EksCluster, Network

    aws = Aws()
    network = Network(aws.stack, "network", {**MAPPINGS["Network"](aws), "node_discovery": True, "nat": "per_az"})
    EksCluster(aws.stack, "eks", {**MAPPINGS["EksCluster"](aws), "subnet_ids": network.private_subnet_ids})
    synthesized = aws.synth()
    private = {
        f"${{aws_subnet.{key}.id}}": subnet["tags"]
        for key, subnet in synthesized["resource"]["aws_subnet"].items()
        if "private" in key
    }
    assert len(private) == 2 and len(resources(synthesized, "aws_nat_gateway")) == 2
    assert all(tags["karpenter.sh/discovery"] == "orders-qa" for tags in private.values())
    [cluster] = resources(synthesized, "aws_eks_cluster")
    [nodes] = resources(synthesized, "aws_eks_node_group")
    assert set(cluster["vpc_config"]["subnet_ids"]) == set(nodes["subnet_ids"]) == set(private)
