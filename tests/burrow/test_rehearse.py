"""The first-deploy rehearsal (`make rehearse`, burrow_tools.rehearse): every environment comes up in
one pass, and each kind of defect that would stop a first deploy is named when it is put back.

The defect tests take the synthesized `prod` (whatever today's code makes of it), set the one aspect
under test right (the baseline: the rehearsal must not complain about it) and then wrong (it must
name the stack, the release and what is missing)."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from dataclasses import replace

import pytest
import yaml

from burrow_tools.rehearse import DECLARED, Deploy, deploy_of, is_builtin, rehearse
from tests.conftest import ENVIRONMENTS
from tests.support.services import ROOT

FEDERATION_SECRET = "rabbitmq-definitions"


@pytest.fixture(scope="module")
def deploys(synthesized) -> dict[str, Deploy]:
    return {b.env.name: deploy_of(b, synthesized.stacks, synthesized.outdir) for b in synthesized.built}


def problems(deploy: Deploy) -> list[str]:
    return [f"{step.stack} | {step.label} | {problem}" for step, problem in rehearse(deploy).blocked]


def releases(deploy: Deploy, stack: str) -> dict[str, dict]:
    return {body["name"]: body for body in deploy.stacks[stack]["resource"]["helm_release"].values()}


def variant(deploy: Deploy) -> Deploy:
    return replace(deploy, stacks=copy.deepcopy(deploy.stacks))


def set_objects(release: dict, objects: list[dict]) -> None:
    release["values"] = [yaml.safe_dump({"objects": objects})]


def objects_of(release: dict) -> list[dict]:
    return yaml.safe_load(release["values"][0])["objects"]


# --- every environment ---------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_rehearses_clean(deploys, env):
    result = rehearse(deploys[env])
    assert not result.blocked, result.report()


def test_the_order_follows_the_stack_dependencies_regions_one_after_another(deploys):
    result = rehearse(deploys["prod"])
    order = result.stack_order
    assert order[:2] == ["prod-common", "prod-global"]  # the state bucket first, global's state in it
    assert deploys["prod"].dependencies["prod-common"] == []  # the bootstrap deploys it alone
    for name, needs in deploys["prod"].dependencies.items():
        assert all(order.index(d) < order.index(name) for d in needs), name
    assert order.index("prod-app") < order.index("prod-us-east-1-common")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_make_deploy_region_by_region_runs_the_order_the_rehearsal_judges(deploys, env):
    """`make deploy ENV=… REGION=…` runs `region_stacks` in that order, one at a time, regions in
    `region_names` order: the same sequence as the rehearsal's, dependencies all before."""
    from burrow_tools.delivery.regions import region_stacks

    config = deploys[env].env
    sequence = [stack for region in config.region_names for stack in region_stacks(config, region)]
    assert sequence == [s for s in rehearse(deploys[env]).stack_order if s in deploys[env].stacks]  # not Flux's
    for position, name in enumerate(sequence):
        assert set(deploys[env].dependencies[name]) <= set(sequence[:position]), name


def test_a_stack_whose_state_bucket_is_not_there_yet_blocks_at_terraform_init(deploys):
    """The account starts empty: prod-global keeps its state in the bucket prod-common creates. The
    order before the fix (prod-common after prod-global) is blocked at prod-global's `terraform init`."""
    deploy = variant(deploys["prod"])
    assert not [p for p in problems(deploy) if "state bucket" in p]
    dependencies = copy.deepcopy(deploy.dependencies)
    dependencies["prod-global"] = []
    dependencies["prod-common"] = ["prod-global"]
    found = problems(replace(deploy, dependencies=dependencies))
    bucket = deploy.stacks["prod-global"]["terraform"]["backend"]["s3"]["bucket"]
    assert f"prod-global | S3 backend | state bucket {bucket} is created by prod-common, which is not applied " \
        "before (terraform init)" in found, found


def test_every_third_party_chart_has_a_declaration(synthesized):
    charts = {
        r["chart"]
        for s in synthesized.stacks.values()
        for r in (s.get("resource") or {}).get("helm_release", {}).values()
        if r.get("repository")
    }
    assert charts <= set(DECLARED), sorted(charts - set(DECLARED))


def test_built_in_kinds_follow_the_kubernetes_version():
    assert is_builtin("policy/v1", "PodDisruptionBudget", "1.33")
    assert not is_builtin("policy/v1beta1", "PodDisruptionBudget", "1.33")  # removed in 1.25
    assert is_builtin("autoscaling/v2beta2", "HorizontalPodAutoscaler", "1.25")
    assert not is_builtin("autoscaling/v2beta2", "HorizontalPodAutoscaler", "1.26")  # removed in 1.26
    assert not is_builtin("monitoring.coreos.com/v1", "ServiceMonitor", "1.33")


# --- defect 4: the deploy path cannot reach the cluster API ------------------------------------


def with_endpoint(deploy: Deploy, public: bool, cidrs: list[str] | None = None) -> Deploy:
    changed = variant(deploy)
    for stack in changed.stacks.values():
        for cluster in (stack.get("resource") or {}).get("aws_eks_cluster", {}).values():
            cluster["vpc_config"]["endpoint_public_access"] = public
            cluster["vpc_config"].pop("public_access_cidrs", None)
            if cidrs:
                cluster["vpc_config"]["public_access_cidrs"] = cidrs
    return changed


def unreachable(deploy: Deploy) -> list[str]:
    return [p for p in problems(deploy) if "cluster API unreachable" in p]


def test_a_private_only_endpoint_is_refused_for_a_deploy_from_the_internet(deploys):
    assert unreachable(with_endpoint(deploys["prod"], public=True)) == []
    found = unreachable(with_endpoint(deploys["prod"], public=False))
    assert found[0].startswith("prod-addons | kubernetes and helm providers |")
    assert "EKS cluster burrow-prod " in found[0] and "private-only" in found[0]


def test_a_public_endpoint_must_admit_where_the_deploy_runs(deploys):
    narrow = with_endpoint(deploys["prod"], public=True, cidrs=["203.0.113.0/24"])
    assert "does not admit the deploy's addresses ['0.0.0.0/0']" in unreachable(narrow)[0]


def test_a_deploy_from_inside_the_vpc_needs_the_private_endpoint(deploys):
    inside = replace(with_endpoint(deploys["prod"], public=False), deploy_from="vpc")
    assert unreachable(inside) == []
    for stack in inside.stacks.values():
        for cluster in (stack.get("resource") or {}).get("aws_eks_cluster", {}).values():
            cluster["vpc_config"]["endpoint_private_access"] = False
    assert "has no private endpoint for deploys from the VPC" in unreachable(inside)[0]


# --- defect 5: NetworkPolicies accepted but not enforced -----------------------------------------


def with_network_policy(deploy: Deploy, enabled: bool) -> Deploy:
    changed = variant(deploy)
    for stack in changed.stacks.values():
        for addon in (stack.get("resource") or {}).get("aws_eks_addon", {}).values():
            if addon["addon_name"] == "vpc-cni":
                settings = json.loads(addon.get("configuration_values") or "{}")
                settings.pop("enableNetworkPolicy", None)
                if enabled:
                    settings["enableNetworkPolicy"] = "true"
                addon["configuration_values"] = json.dumps(settings)
    return changed


def test_network_policies_need_the_vpc_cni_to_enforce_them(deploys):
    assert not [p for p in problems(with_network_policy(deploys["prod"], True)) if "would not be enforced" in p]
    found = [p for p in problems(with_network_policy(deploys["prod"], False)) if "would not be enforced" in p]
    assert any(
        p.startswith("prod-app | release burrow-prod-network-defaults")
        and "NetworkPolicy/burrow-prod/default-deny" in p
        and "enableNetworkPolicy" in p
        for p in found
    ), found


# --- defect 3: a controller's IAM policy that cannot make a call its code path runs ----------------


def with_ingress_only_on_tagged_groups(deploy: Deploy, stack: str) -> Deploy:
    """The old defect: opening security groups only where the controller tagged them (it never tags
    the EKS cluster security group, so the load balancers get no path to the pods)."""
    changed = variant(deploy)
    for policy in changed.stacks[stack]["resource"]["aws_iam_role_policy"].values():
        if policy.get("name") != "aws-load-balancer-controller":
            continue
        document = json.loads(policy["policy"])
        for statement in document["Statement"]:
            if "ec2:AuthorizeSecurityGroupIngress" in statement["Action"]:
                statement["Condition"] = {"Null": {"aws:ResourceTag/elbv2.k8s.aws/cluster": "false"}}
        policy["policy"] = json.dumps(document)
    return changed


def test_a_controller_policy_narrower_than_upstream_blocks_its_stack(deploys):
    assert deploys["prod"].upstream is not None, "the upstream reference data (../shared/upstream) is missing"
    assert not [p for p in problems(deploys["prod"]) if p.startswith("prod-cluster | IAM")]
    found = [p for p in problems(with_ingress_only_on_tagged_groups(deploys["prod"], "prod-cluster"))
             if p.startswith("prod-cluster | IAM")]
    assert found and all("ec2:" in p and "SecurityGroupIngress" in p for p in found), found


# --- defect 2: a release before the CRDs it renders; an after= name that resolves to nothing ---------


def with_controller_after_monitoring(deploy: Deploy, after: bool) -> Deploy:
    changed = variant(deploy)
    addons = releases(changed, "prod-addons")
    monitoring = next(
        k
        for k, b in changed.stacks["prod-addons"]["resource"]["helm_release"].items()
        if b["name"] == "kube-prometheus-stack"
    )
    controller = addons["aws-load-balancer-controller"]
    needs = [d for d in controller.get("depends_on") or [] if "kube-prometheus-stack" not in d]
    controller["depends_on"] = [*needs, f"helm_release.{monitoring}"] if after else needs
    return changed


def test_a_chart_that_renders_a_service_monitor_waits_for_the_monitoring_crds(deploys):
    def about_controller(deploy):
        return [p for p in problems(deploy) if p.startswith("prod-addons | release aws-load-balancer-controller")]

    assert about_controller(with_controller_after_monitoring(deploys["prod"], after=True)) == []
    found = about_controller(with_controller_after_monitoring(deploys["prod"], after=False))
    assert "kind monitoring.coreos.com/v1 ServiceMonitor (rendered by chart aws-load-balancer-controller)" in found[0]
    assert "its CRD is installed by no earlier release" in found[0]


def test_an_after_name_that_resolves_to_nothing_is_refused_when_built(tmp_path):
    """An `after=` typo never reaches the rehearsal: building the stack refuses it, naming the add-on."""
    from cdktf import App, TerraformStack

    from burrow.addons.base import HelmAddOn
    from burrow.errors import BurrowError
    from burrow.spi import KubeconfigCluster

    stack = TerraformStack(App(outdir=str(tmp_path)), "dev-addons")
    cluster = KubeconfigCluster(kubeconfig_path="/dev/null", context="kind-burrow", version="1.33")
    cluster.configure_providers(stack)
    addon = HelmAddOn(
        name="external-dns",
        repository="https://example.invalid",
        chart="external-dns",
        version="1.21.1",
        namespace="kube-system",
        after=("monitoring",),
    )
    with pytest.raises(BurrowError, match=r"dev-addons/external-dns.*no add-on 'monitoring'"):
        addon.deploy(stack, cluster)


def with_federation_definitions(deploy: Deploy, peer_region: str | None) -> Deploy:
    """prod-app's broker loads definitions from a Secret built by an ExternalSecret that reads this
    region's broker secret and, with `peer_region`, the peer region's (through that region's store)."""
    changed = variant(deploy)
    app = releases(changed, "prod-app")
    values = yaml.safe_load(app["rabbitmq"]["values"][-1])
    values["loadDefinition"] = {"enabled": True, "existingSecret": FEDERATION_SECRET}
    app["rabbitmq"]["values"][-1] = yaml.safe_dump(values)
    sources = [{"extract": {"key": "burrow/prod/rabbitmq"}}]
    if peer_region:
        store = f"burrow-secrets-manager-{peer_region}"
        sources.append(
            {
                "extract": {"key": "burrow/prod/rabbitmq"},
                "sourceRef": {"storeRef": {"kind": "ClusterSecretStore", "name": store}},
            }
        )
        store_release = releases(changed, "prod-addons")["burrow-secret-store"]
        stores = [o for o in objects_of(store_release) if o["metadata"]["name"] != store]
        peer = copy.deepcopy(next(o for o in stores if o["kind"] == "ClusterSecretStore"))
        peer["metadata"]["name"] = store
        peer["spec"]["provider"]["aws"]["region"] = peer_region
        set_objects(store_release, [*stores, peer])
    credentials = app["rabbitmq-credentials"]
    kept = [o for o in objects_of(credentials) if o["metadata"]["name"] != FEDERATION_SECRET]
    definitions = {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": FEDERATION_SECRET, "namespace": "burrow-prod"},
        "spec": {
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": "burrow-secrets-manager-burrow-prod"},
            "target": {"name": FEDERATION_SECRET},
            "dataFrom": sources,
        },
    }
    set_objects(credentials, [*kept, definitions])
    return changed


def test_a_secret_read_from_a_region_not_yet_deployed_blocks_the_broker(deploys):
    def about_definitions(deploy):
        return [p for p in problems(deploy) if FEDERATION_SECRET in p]

    assert about_definitions(with_federation_definitions(deploys["prod"], peer_region=None)) == []
    found = about_definitions(with_federation_definitions(deploys["prod"], peer_region="us-east-1"))
    assert found[0].startswith("prod-app | release rabbitmq (burrow-prod): chart rabbitmq")
    assert "reads burrow/prod/rabbitmq in us-east-1" in found[0]
    assert "(written later by prod-us-east-1-cluster)" in found[0]


def with_cert_manager(deploy: Deploy, issuer: str | None) -> Deploy:
    """Every prod add-ons stack installs cert-manager's Certificate and ClusterIssuer CRDs (as the
    add-ons layer's cert-manager does) and, with `issuer`, a ClusterIssuer of that name: the only
    federation issuer (one the add-ons already deliver is taken out)."""
    changed = variant(deploy)
    for stack in ("prod-addons", "prod-us-east-1-addons"):
        for body in releases(changed, stack).values():
            delivered = yaml.safe_load((body.get("values") or ["{}"])[0])
            if isinstance(delivered, dict) and "objects" in delivered:
                federation_issuer = ("ClusterIssuer", "burrow-federation")
                kept = [o for o in delivered["objects"] if (o["kind"], o["metadata"]["name"]) != federation_issuer]
                if len(kept) != len(delivered["objects"]):
                    set_objects(body, kept)
        store_release = releases(changed, stack)["burrow-secret-store"]
        crds = [{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                 "metadata": {"name": f"{kind.lower()}s.cert-manager.io"},
                 "spec": {"group": "cert-manager.io", "names": {"kind": kind}}} for kind in ("Certificate", "ClusterIssuer")]
        issuers = [{"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer", "metadata": {"name": issuer},
                    "spec": {"ca": {"secretName": "federation-ca"}}}] if issuer else []
        set_objects(store_release, [*objects_of(store_release), *crds, *issuers])
    return changed


def test_the_brokers_tls_secret_comes_from_a_certificate_whose_issuer_exists(deploys):
    """prod's brokers serve federation over TLS from the Secret their cert-manager Certificate
    fills: with cert-manager and the environment's federation ClusterIssuer in the add-ons stacks,
    nothing about it blocks; without the issuer, the Certificate (and the broker after it) does."""
    def about_tls(deploy):
        return [p for p in problems(deploy) if "rabbitmq-federation-tls" in p or "burrow-federation" in p]

    assert problems(with_cert_manager(deploys["prod"], "burrow-federation")) == []
    found = about_tls(with_cert_manager(deploys["prod"], "some-other-issuer"))
    assert found[0].startswith("prod-app | release rabbitmq-credentials (burrow-prod) | ClusterIssuer burrow-federation "
                               "of Certificate/burrow-prod/rabbitmq-federation-tls")
    credentials = objects_of(releases(deploys["prod"], "prod-app")["rabbitmq-credentials"])
    assert [o["spec"]["secretName"] for o in credentials if o["kind"] == "Certificate"] == ["rabbitmq-federation-tls"]


# --- the other prerequisites ---------------------------------------------------------------------


def test_irsa_roles_must_trust_the_service_account_that_uses_them(deploys):
    changed = variant(deploys["prod"])
    trust = changed.stacks["prod-cluster"]["data"]["aws_iam_policy_document"]
    reader = next(
        doc
        for doc in trust.values()
        if "system:serviceaccount:external-secrets:burrow-secrets-manager-burrow-prod" in json.dumps(doc)
    )
    reader["statement"][0]["condition"][0]["values"] = ["system:serviceaccount:external-secrets:someone-else"]
    found = [p for p in problems(changed) if "IRSA role" in p]
    assert found[0].startswith("prod-addons | release burrow-secret-store (external-secrets)")
    assert "its trust names ['system:serviceaccount:external-secrets:someone-else via " in found[0]


def us_east_reader_trust(deploy: Deploy) -> dict:
    trust = deploy.stacks["prod-us-east-1-cluster"]["data"]["aws_iam_policy_document"]
    return next(doc for doc in trust.values() if "system:serviceaccount:external-secrets:burrow-secrets-manager-burrow-prod" in json.dumps(doc))


def test_irsa_trust_must_name_the_clusters_own_oidc_provider(deploys):
    """us-east-1's roles trusting eu-west-1's provider: the subject matches, but the token of a pod in
    us-east-1 comes from us-east-1's issuer, so STS refuses it."""
    changed = variant(deploys["prod"])
    principal = us_east_reader_trust(changed)["statement"][0]["principals"][0]
    assert not [p for p in problems(changed) if "IRSA role" in p]
    principal["identifiers"] = ["arn:aws:iam::345678901234:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EU"]
    found = [p for p in problems(changed) if "IRSA role" in p]
    assert found and found[0].startswith("prod-us-east-1-addons | release burrow-secret-store (external-secrets)"), found
    assert "its trust names ['system:serviceaccount:external-secrets:burrow-secrets-manager-burrow-prod via ?']" in found[0]


def test_irsa_trust_must_ask_for_the_sts_audience(deploys):
    changed = variant(deploys["prod"])
    for condition in us_east_reader_trust(changed)["statement"][0]["condition"]:
        if condition["variable"].endswith(":aud"):
            condition["values"] = ["sts.amazonaws.com.wrong"]
    found = [p for p in problems(changed) if "IRSA role" in p]
    assert found and found[0].startswith("prod-us-east-1-addons | release burrow-secret-store (external-secrets)"), found
    assert "nothing with audience sts.amazonaws.com" in found[0]


def test_a_pod_needs_its_service_account_secret_and_storage_class(deploys):
    changed = variant(deploys["dev"])
    consumer = releases(changed, "dev-app")["consumer"]
    objects = objects_of(consumer)
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    pod["serviceAccountName"] = "nobody"
    pod.setdefault("volumes", []).append({"name": "extra", "secret": {"secretName": "not-there"}})
    pod["volumes"].append({"name": "fine", "secret": {"secretName": "not-there-either", "optional": True}})
    set_objects(
        consumer, [o for o in objects if not (o["kind"] == "ServiceAccount" and o["metadata"]["name"] == "nobody")]
    )
    rabbit = releases(changed, "dev-app")["rabbitmq"]
    values = yaml.safe_load(rabbit["values"][-1])
    values["persistence"] = {"enabled": True, "storageClass": "fast"}
    rabbit["values"][-1] = yaml.safe_dump(values)
    found = problems(changed)
    assert any("StorageClass fast of chart rabbitmq" in p for p in found), found
    consumer_problems = [p for p in found if p.startswith("dev-app | release consumer")]
    assert "ServiceAccount burrow-dev/nobody" in consumer_problems[0]
    assert not any("not-there-either" in p for p in found)


def test_a_kind_removed_from_the_kubernetes_version_is_refused(deploys):
    changed = variant(deploys["dev"])
    defaults = next(b for b in releases(changed, "dev-app").values() if b["name"].endswith("network-defaults"))
    objects = objects_of(defaults)
    objects.append(
        {
            "apiVersion": "policy/v1beta1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "old", "namespace": "burrow-dev"},
            "spec": {},
        }
    )
    set_objects(defaults, objects)
    assert any(
        "kind policy/v1beta1 PodDisruptionBudget (PodDisruptionBudget/burrow-dev/old)" in p for p in problems(changed)
    )


# --- the command line and the docs ---------------------------------------------------------------


def order_block(text: str) -> list[str]:
    """The stacks listed in the fenced block after the `make rehearse ENV=prod` order heading."""
    block = re.search(r"<!-- rehearse-order -->\s*```text\n(.*?)```", text, re.S)
    assert block, "docs/first-deploy.md has no <!-- rehearse-order --> block"
    return [
        line.split(". ", 1)[1].split("  (")[0] for line in block.group(1).splitlines() if re.match(r"^\d+\. ", line)
    ]


def test_the_first_deploy_page_shows_the_order_the_rehearsal_prints(deploys):
    page = (ROOT / "docs" / "first-deploy.md").read_text()
    assert order_block(page) == rehearse(deploys["prod"]).stack_order


def test_make_rehearse_prints_the_order_and_exits_as_the_rehearsal_judges(deploys):
    expected = rehearse(deploys["prod"])
    run = subprocess.run(
        ["make", "-s", "rehearse", "ENV=prod", "RELEASE=tests/fixtures/release.json"], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )
    printed = [line.split(". ", 1)[1].split("  (")[0] for line in run.stdout.splitlines() if re.match(r"^\d+\. ", line)]
    assert printed == expected.stack_order
    if expected.blocked:  # the rehearsal exits 1, and make says so
        assert run.returncode == 2 and "Error 1" in run.stderr, run.stderr[-2000:]
        assert f"first blocked step: {expected.first_blocked}" in run.stdout
    else:
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        assert "every step has what it needs" in run.stdout


def test_make_rehearse_refuses_an_unknown_environment():
    run = subprocess.run(
        ["make", "-s", "rehearse", "ENV=nowhere"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 2 and "Error 2" in run.stderr  # the rehearsal's own status for bad input
    assert "nowhere" in run.stderr and "Traceback" not in run.stderr
