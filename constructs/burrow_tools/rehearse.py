"""`make rehearse ENV=…`: the first deploy of an environment into an empty account, simulated.

Stacks come up in the order cdktf runs them (the stack dependencies of the synthesized manifest,
regions one after another), and inside a stack in the order Terraform may apply its resources
(`depends_on` and references). A stack sees what every stack it depends on created; a release
sees what its stack's resources that it depends on created, and what it creates itself. At every
helm release and Kubernetes resource the rehearsal asks what the API server and the controllers
would need at that moment:

- the cluster API is reachable from where the deploy runs (`cluster.api_access.deploy_from`,
  `internet` when the configuration has no such key) through the EKS cluster's `vpc_config`;
- each object's kind is built into the environment's Kubernetes version, or its CRD came with an
  earlier release; third-party charts render what their `ChartKinds` declaration says;
- its namespace exists; a pod's ServiceAccount exists; a claim's StorageClass exists;
- every Secret and ConfigMap a pod needs (volumes not marked optional, `envFrom`, `secretKeyRef`,
  `configMapKeyRef`, and the Secrets a chart is told to use) was created earlier by an object or
  by an ExternalSecret whose every remote key, in its store's region, was written by a stack
  already applied (a Secrets Manager secret is written by the stack holding it and a version; a
  shell without a version, such as the federation CA that a PushSecret fills, is written by none),
  or by a cert-manager Certificate whose issuer exists;
- every IRSA annotation names a role of an earlier stack whose trust names that ServiceAccount,
  through the OIDC provider of the ServiceAccount's own cluster, with audience `sts.amazonaws.com`;
- NetworkPolicies are enforced (EKS: the vpc-cni add-on has `enableNetworkPolicy`);
- every `after=` name of an add-on resolved to an add-on of its stack;
- the account starts empty, state bucket included: a stack on an S3 backend comes after the stack
  that creates its bucket (that stack itself bootstraps on local state).

It prints the order, stack by stack and release by release, and the first blocked step (stack,
release, missing prerequisite); the exit status is 1 when a step is blocked. It reads the
synthesized stacks in process (one synth for the command, none in tests).

Usage: python -m burrow_tools.rehearse <env>
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from burrow.addons import (
    cert_manager,
    edge,
    external_secrets,
    flux,
    karpenter,
    keda,
    metrics_server,
    monitoring,
    velero,
)
from burrow.addons.base import SYSTEM_NAMESPACES
from burrow.addons.kinds import ChartKinds
from burrow.app import rabbitmq
from burrow.config.schema import EnvironmentConfig
from burrow.k8s.pod_security import pod_specs
from burrow.k8s.release import terraform_unescape
from burrow.k8s.validate import object_id
from burrow.merge import deep_merge

ROOT = Path(__file__).resolve().parents[2]
#: Every third-party chart Burrow installs, by chart name, with what it renders.
DECLARED: dict[str, ChartKinds] = {
    kinds.chart: kinds
    for kinds in (
        cert_manager.KINDS,
        edge.LOAD_BALANCER_KINDS,
        edge.DNS_KINDS,
        external_secrets.KINDS,
        flux.KINDS,
        karpenter.CRD_KINDS,
        karpenter.KINDS,
        keda.KINDS,
        metrics_server.KINDS,
        monitoring.PROMETHEUS_KINDS,
        monitoring.LOKI_KINDS,
        monitoring.ALLOY_KINDS,
        velero.KINDS,
        rabbitmq.KINDS,
    )
}
ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"
CLUSTER_SCOPED = {
    "Namespace",
    "StorageClass",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "ClusterSecretStore",
    "ClusterIssuer",
    "NodePool",
    "EC2NodeClass",
    "PriorityClass",
    "IngressClass",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
}
#: StorageClasses a cluster comes with: EKS makes `gp2` (not the default); kind's `standard` is.
CLUSTER_STORAGE = {"eks": ("gp2", None), "existing": ("standard", "standard")}
_REMOTE = re.compile(r"data\.terraform_remote_state\.cross-stack-reference-input-([\w.-]+?)\.outputs\.([\w.-]+)")
_LOCAL = re.compile(r"\$\{((?:data\.)?[a-z0-9_]+)\.([\w-]+)\.")

Fact = tuple[str, ...]


@dataclass
class Need:
    """A prerequisite of a step: `fact` must be visible, `what` says it in words."""

    fact: Fact
    what: str
    #: What is said when nothing visible provides `fact`.
    absent: str = "created by nothing applied before"


@dataclass
class Step:
    """One thing Terraform (or Flux) applies: a helm release, a Kubernetes resource, an AWS stack."""

    stack: str
    address: str
    label: str
    provides: dict[Fact, Any] = field(default_factory=dict)
    needs: list[Need] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


@dataclass
class Rehearsal:
    env: str
    stack_order: list[str]
    lines: list[str]
    blocked: list[tuple[Step, str]]

    @property
    def first_blocked(self) -> str | None:
        if not self.blocked:
            return None
        step, problem = self.blocked[0]
        return f"stack {step.stack}, {step.label}: {problem}"

    def report(self) -> str:
        tail = f"first blocked step: {self.first_blocked}" if self.blocked else "every step has what it needs"
        return "\n".join([*self.lines, "", tail, f"{len(self.blocked)} blocked step(s)"])


@dataclass
class Deploy:
    """What the rehearsal reads: one environment's synthesized stacks and their dependencies."""

    env: EnvironmentConfig
    stacks: dict[str, dict]  # name -> cdk.tf.json, in the order the environment builds them
    dependencies: dict[str, list[str]]  # name -> stacks it depends on (cdktf's manifest)
    gitops: list[dict] = field(default_factory=list)  # objects Flux applies (`delivery: gitops`)
    #: Where the deploy runs (`internet` or `vpc`); default: the environment's `cluster.api_access.deploy_from`.
    deploy_from: str | None = None
    #: The upstream reference data the controllers' IAM policies are held to (`../shared/upstream`);
    #: None: not checked.
    upstream: Path | None = None


# --- reading the synthesized stacks -----------------------------------------------------------


def resources_of(stack: dict) -> Iterator[tuple[str, dict]]:
    for rtype, items in (stack.get("resource") or {}).items():
        for rid, body in items.items():
            yield f"{rtype}.{rid}", body


def block(value: Any) -> dict:
    """A Terraform block as cdktf writes it: a mapping, or a list holding one."""
    if isinstance(value, list):
        return value[0] if value else {}
    return value or {}


def resolve(stacks: Mapping[str, dict], stack: str, expression: str) -> tuple[str, str] | None:
    """(stack, `type.id`) of the resource an expression refers to, through cross-stack outputs."""
    remote = _REMOTE.search(expression)
    if remote:
        source, output = remote.groups()
        value = ((stacks.get(source) or {}).get("output") or {}).get(output, {}).get("value")
        return resolve(stacks, source, value) if isinstance(value, str) else None
    local = _LOCAL.search(expression)
    return (stack, f"{local.group(1)}.{local.group(2)}") if local else None


def find(stacks: Mapping[str, dict], ref: tuple[str, str] | None) -> dict | None:
    if ref is None:
        return None
    section, address = ("data", ref[1][5:]) if ref[1].startswith("data.") else ("resource", ref[1])
    rtype, rid = address.split(".", 1)
    return ((stacks.get(ref[0]) or {}).get(section) or {}).get(rtype, {}).get(rid)


def provider_regions(stack: dict) -> dict[str, str]:
    """`aws` / `aws.<alias>` -> region."""
    return {
        ("aws." + p["alias"]) if p.get("alias") else "aws": p["region"]
        for p in (stack.get("provider") or {}).get("aws", [])
    }


def release_values(body: dict) -> dict:
    merged: dict = {}
    for doc in body.get("values") or []:
        parsed = yaml.safe_load(terraform_unescape(doc)) if isinstance(doc, str) else None
        if isinstance(parsed, Mapping):
            merged = deep_merge(merged, parsed)
    return merged


def is_builtin(api_version: str, kind: str, kubernetes_version: str) -> bool:
    """True when Kubernetes `kubernetes_version` serves (apiVersion, kind) without a CRD (the
    OpenAPI schemas kubernetes-validate ships for that version)."""
    munged = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    if "." in api_version.split("/")[0] and not api_version.split("/")[0].endswith(".k8s.io"):
        return False
    folder = resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{kubernetes_version}.0-local"
    if not folder.is_dir():
        raise ValueError(f"kubernetes-validate has no API schemas for Kubernetes {kubernetes_version}")
    return (folder / f"{kind.lower()}-{munged}.json").is_file()


# --- what a step needs and provides -------------------------------------------------------------


def ancestors(graph: Mapping[str, Sequence[str]], node: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph.get(node, ()))
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += graph.get(current, ())
    return seen


def topological(order: Sequence[str], graph: Mapping[str, Sequence[str]]) -> list[str]:
    """`order` rearranged so that everything comes after what it depends on (stable otherwise)."""
    done: list[str] = []
    pending = list(order)
    while pending:
        ready = next((n for n in pending if all(d in done or d not in order for d in graph.get(n, ()))), pending[0])
        pending.remove(ready)
        done.append(ready)
    return done


def service_accounts(values: Any) -> Iterator[tuple[str, str | None]]:
    """(name, role reference) of every ServiceAccount a chart's values describe with annotations."""
    if isinstance(values, Mapping):
        annotations = values.get("annotations")
        if isinstance(annotations, Mapping) and isinstance(values.get("name"), str):
            yield values["name"], annotations.get(ROLE_ANNOTATION)
        for value in values.values():
            yield from service_accounts(value)
    elif isinstance(values, list):
        for value in values:
            yield from service_accounts(value)


def _required(ref: Mapping[str, Any] | None) -> bool:
    return bool(ref) and not ref.get("optional")


def pod_references(pod: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(`secret`|`configmap`, name, where) for every Secret and ConfigMap a pod cannot start without:
    volumes (projected ones too), `envFrom` and `secretKeyRef`/`configMapKeyRef`, unless optional."""
    for volume in pod.get("volumes") or []:
        sources = [volume, *((volume.get("projected") or {}).get("sources") or [])]
        for source in sources:
            if _required(source.get("secret")):
                yield (
                    "secret",
                    source["secret"].get("secretName") or source["secret"].get("name"),
                    f"volume {volume.get('name')}",
                )
            if _required(source.get("configMap")):
                yield "configmap", source["configMap"]["name"], f"volume {volume.get('name')}"
    for container in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
        for source in container.get("envFrom") or []:
            for key, kind in (("secretRef", "secret"), ("configMapRef", "configmap")):
                if _required(source.get(key)):
                    yield kind, source[key]["name"], f"envFrom of container {container.get('name')}"
        for variable in container.get("env") or []:
            for key, kind in (("secretKeyRef", "secret"), ("configMapKeyRef", "configmap")):
                ref = (variable.get("valueFrom") or {}).get(key)
                if _required(ref):
                    yield kind, ref["name"], f"env {variable.get('name')} of container {container.get('name')}"


class Simulation:
    """Builds the steps of one environment's deploy and judges them in order."""

    def __init__(self, deploy: Deploy) -> None:
        self.deploy = deploy
        self.env = deploy.env
        self.version = deploy.env.kubernetes.version
        self.stacks = deploy.stacks
        access = getattr(deploy.env.cluster, "api_access", None)  # absent before the deploy-path schema
        self.deploy_from: str = deploy.deploy_from or getattr(access, "deploy_from", None) or "internet"
        self.deploy_cidrs = list(getattr(access, "public_cidrs", None) or [])
        self.upstream = deploy.upstream

    def backend_problem(self, stack: str, earlier: set[str]) -> str | None:
        """`terraform init` of a stack on an S3 backend needs that bucket: created by a stack applied
        before, or by the stack itself (the bootstrap: applied on local state, then migrated)."""
        bucket = ((self.stacks[stack].get("terraform") or {}).get("backend") or {}).get("s3", {}).get("bucket")
        if bucket is None:
            return None
        owners = [
            name
            for name, stack_body in self.stacks.items()
            for address, body in resources_of(stack_body)
            if address.startswith("aws_s3_bucket.") and body.get("bucket") == bucket
        ]
        if not owners or stack in owners or any(owner in earlier for owner in owners):
            return None  # a bucket no stack creates is the operator's (nothing to order)
        return f"state bucket {bucket} is created by {', '.join(owners)}, which is not applied before (terraform init)"

    def iam_problems(self, stack: str) -> list[str]:
        """A controller's policy in `stack` that grants less than its upstream reference at the pinned
        version, beyond the differences declared with a reason (`burrow_tools.iam_narrowings`): the
        controller would fail at the first call it cannot make. Without the reference data, nothing."""
        from burrow_tools import iam_conformance as iam  # noqa: PLC0415 - only AWS stacks need it

        if self.upstream is None:
            return []
        return [
            f"{finding.message()} (controller {controller} {spec.pinned})"
            for controller, spec in iam.CONTROLLERS.items()
            if iam.burrow_policy(self.stacks, stack, controller)
            for finding in iam.check(controller, spec.pinned, self.stacks, stack, self.upstream).undeclared
        ]

    # cluster side
    def cluster_of(self, stack: str) -> str | None:
        provider = block((self.stacks[stack].get("provider") or {}).get("kubernetes"))
        if not provider:
            return None
        if "config_context" in provider:
            return f"context:{provider['config_context']}"
        ref = resolve(self.stacks, stack, str(provider.get("host", "")))
        return f"{ref[0]}:{ref[1]}" if ref else None

    def reach_problem(self, cluster: str) -> str | None:
        """Why the deploy cannot reach the cluster's API, or None."""
        if cluster.startswith("context:"):
            return None
        stack, address = cluster.split(":", 1)
        vpc = block((find(self.stacks, (stack, address)) or {}).get("vpc_config"))
        name = (find(self.stacks, (stack, address)) or {}).get("name")
        public = vpc.get("endpoint_public_access", True)
        cidrs = vpc.get("public_access_cidrs") or ["0.0.0.0/0"]
        where = (
            f"EKS cluster {name} ({stack}: vpc_config endpoint_public_access={str(public).lower()}, "
            f"public_access_cidrs={cidrs})"
        )
        if self.deploy_from == "vpc":
            return (
                None
                if vpc.get("endpoint_private_access")
                else f"{where} has no private endpoint for deploys from the VPC"
            )
        if not public:
            return f"{where} is private-only, but the deploy runs from the internet (cluster.api_access.deploy_from: internet)"
        networks = [ipaddress.ip_network(c, strict=False) for c in cidrs]
        runners = [ipaddress.ip_network(c, strict=False) for c in self.deploy_cidrs] or [
            ipaddress.ip_network("0.0.0.0/0")
        ]
        outside = [str(r) for r in runners if not any(r.subnet_of(n) for n in networks if r.version == n.version)]
        return f"{where} does not admit the deploy's addresses {outside}" if outside else None

    # AWS stacks
    def aws_step(self, name: str) -> Step:
        stack = self.stacks[name]
        regions = provider_regions(stack)
        step = Step(name, "aws", "AWS resources")
        versions = " ".join(
            json.dumps(body.get("secret_id"))
            for a, body in resources_of(stack)
            if a.startswith("aws_secretsmanager_secret_version.")
        )
        written = []
        for address, body in resources_of(stack):
            rtype = address.split(".")[0]
            if rtype == "aws_secretsmanager_secret" and f"{address}." in versions:
                region = regions.get(body.get("provider", "aws"), regions.get("aws", "?"))
                for where in [region, *(r["region"] for r in body.get("replica") or [])]:
                    step.provides[("aws-secret", where, body["name"])] = name
                    written.append(f"{body['name']} ({where})")
            elif rtype == "aws_iam_role":
                step.provides[("role", name, address)] = self.trusted(name, body)
            elif rtype == "aws_eks_cluster":
                cluster = f"{name}:{address}"
                step.provides[("cluster", cluster)] = body.get("name")
                problem = self.reach_problem(cluster)
                if problem is None:
                    step.provides[("api", cluster)] = True
                if self.network_policy_enabled(stack, address):
                    step.provides[("netpol", cluster)] = True
                default_class = CLUSTER_STORAGE["eks"]
                step.provides[("sc", cluster, default_class[0])] = True
        step.label = "AWS resources" + (f"; writes secrets {', '.join(written)}" if written else "")
        return step

    def trusted(self, stack: str, role: dict) -> set[str] | set[tuple[str, tuple[str, str] | None]]:
        """The `system:serviceaccount:<ns>:<name>` subjects a role's trust policy admits. From a policy
        document (IRSA, `irsa_trust`): (subject, OIDC provider) pairs, only for statements whose `:aud`
        condition is `sts.amazonaws.com` (the audience EKS's pod identity webhook asks for)."""
        policy = role.get("assume_role_policy", "")
        reference = policy.startswith("${")
        document = find(self.stacks, resolve(self.stacks, stack, policy)) if reference else None
        if document is not None:
            pairs: set[tuple[str, tuple[str, str] | None]] = set()
            for statement in document.get("statement") or []:
                conditions = statement.get("condition") or []
                audiences = [v for c in conditions if str(c.get("variable", "")).endswith(":aud") for v in c["values"]]
                if audiences != ["sts.amazonaws.com"]:
                    continue
                providers = [
                    resolve(self.stacks, stack, identifier)
                    for principal in statement.get("principals") or []
                    if principal.get("type") == "Federated"
                    for identifier in principal.get("identifiers") or []
                ]
                for condition in conditions:
                    if str(condition.get("variable", "")).endswith(":sub"):
                        pairs.update(
                            (subject, provider) for subject in condition.get("values") or [] for provider in providers
                        )
            return pairs
        subjects: set[str] = set()
        if policy and not reference:
            for statement in json.loads(policy).get("Statement", []):
                for test in (statement.get("Condition") or {}).values():
                    subjects.update(
                        v for k, vs in test.items() if k.endswith(":sub") for v in ([vs] if isinstance(vs, str) else vs)
                    )
        return subjects

    @staticmethod
    def network_policy_enabled(stack: dict, cluster_address: str) -> bool:
        for _, body in resources_of(stack):
            if body.get("addon_name") == "vpc-cni" and cluster_address in str(body.get("cluster_name")):
                settings = json.loads(body.get("configuration_values") or "{}")
                return str(settings.get("enableNetworkPolicy", "")).lower() == "true"
        return False

    # Kubernetes steps
    def kind_need(self, cluster: str, api_version: str, kind: str, where: str) -> Need | None:
        if is_builtin(api_version, kind, self.version):
            return None
        group = api_version.split("/")[0]
        return Need(
            ("crd", cluster, group, kind),
            f"kind {api_version} {kind} ({where})",
            f"its CRD is installed by no earlier release and Kubernetes {self.version} does not serve it",
        )

    def irsa_need(self, stack: str, cluster: str, namespace: str, account: str, role_ref: str | None) -> Need | None:
        if not role_ref:
            return None
        ref = resolve(self.stacks, stack, role_ref)
        subject = f"system:serviceaccount:{namespace}:{account}"
        if ref is None:
            return Need(
                ("never", role_ref),
                f"ServiceAccount {namespace}/{account}: IRSA role {role_ref} is created by no stack",
            )
        return Need(
            ("role", ref[0], ref[1], subject, self.oidc_provider_of(cluster)),
            f"ServiceAccount {namespace}/{account}: IRSA role {ref[1]} of {ref[0]} (created earlier, trusting {subject} "
            "through its cluster's OIDC provider, audience sts.amazonaws.com)",
        )

    def oidc_provider_of(self, cluster: str) -> tuple[str, str] | None:
        """(stack, address) of the IAM OIDC provider whose url is `cluster`'s issuer (`stack:address`)."""
        stack, address = cluster.split(":", 1) if ":" in cluster else (cluster, "")
        for name, body in resources_of(self.stacks.get(stack) or {}):
            if name.startswith("aws_iam_openid_connect_provider.") and f"${{{address}." in str(body.get("url")):
                return (stack, name)
        return None

    def object_needs(self, stack: str, cluster: str, namespace: str, obj: dict) -> list[Need]:
        kind, api_version = obj.get("kind", ""), obj.get("apiVersion", "")
        meta = obj.get("metadata") or {}
        ns = meta.get("namespace", namespace)
        needs = [self.kind_need(cluster, api_version, kind, object_id(obj))]
        if kind not in CLUSTER_SCOPED and ns not in SYSTEM_NAMESPACES:
            needs.append(Need(("ns", cluster, ns), f"namespace {ns} of {object_id(obj)}"))
        if kind == "ServiceAccount":
            needs.append(
                self.irsa_need(
                    stack, cluster, ns, meta.get("name"), (meta.get("annotations") or {}).get(ROLE_ANNOTATION)
                )
            )
        if kind == "NetworkPolicy":
            needs.append(self.netpol_need(cluster, object_id(obj)))
        if kind == "ExternalSecret":
            for store in self.stores_of(obj):
                needs.append(Need(("store", cluster, store), f"ClusterSecretStore {store} of {object_id(obj)}"))
        if kind == "Certificate":
            issuer = (obj.get("spec") or {}).get("issuerRef") or {}
            scoped = issuer.get("kind") == "ClusterIssuer"
            needs.append(Need(("issuer", cluster, None if scoped else ns, issuer.get("name")),
                              f"{issuer.get('kind', 'Issuer')} {issuer.get('name')} of {object_id(obj)}"))
        for pod in pod_specs(obj):
            needs += self.pod_needs(cluster, ns, pod, object_id(obj))
        for claim in (obj.get("spec") or {}).get("volumeClaimTemplates") or []:
            needs.append(self.class_need(cluster, (claim.get("spec") or {}).get("storageClassName"), object_id(obj)))
        if kind == "PersistentVolumeClaim":
            needs.append(self.class_need(cluster, (obj.get("spec") or {}).get("storageClassName"), object_id(obj)))
        return [n for n in needs if n is not None]

    def netpol_need(self, cluster: str, what: str) -> Need | None:
        if cluster.startswith("context:"):
            return None  # kind's kindnet enforces NetworkPolicies (kind ≥ 0.24); other clusters are the owner's call
        return Need(
            ("netpol", cluster),
            f"{what}: would not be enforced",
            'the cluster\'s vpc-cni add-on does not set enableNetworkPolicy: "true"',
        )

    def class_need(self, cluster: str, name: str | None, what: str) -> Need:
        if name:
            return Need(("sc", cluster, name), f"StorageClass {name} of {what}")
        return Need(("default-sc", cluster), f"a default StorageClass for {what}")

    def pod_needs(self, cluster: str, ns: str, pod: dict, what: str) -> list[Need]:
        needs = []
        account = pod.get("serviceAccountName")
        if account and account != "default":
            needs.append(Need(("sa", cluster, ns, account), f"ServiceAccount {ns}/{account} of {what}"))
        for kind, name, where in pod_references(pod):
            needs.append(Need((kind, cluster, ns, name), f"{kind} {ns}/{name} ({where} of {what})"))
        return needs

    @staticmethod
    def stores_of(external_secret: dict) -> list[str]:
        spec = external_secret.get("spec") or {}
        default = (spec.get("secretStoreRef") or {}).get("name")
        stores = []
        for source in [*(spec.get("dataFrom") or []), *(spec.get("data") or [])]:
            if "generatorRef" in (source.get("sourceRef") or {}):
                continue
            stores.append(((source.get("sourceRef") or {}).get("storeRef") or {}).get("name") or default)
        return sorted(set(filter(None, stores)))

    def object_provides(self, cluster: str, namespace: str, obj: dict) -> dict[Fact, Any]:
        kind = obj.get("kind")
        meta = obj.get("metadata") or {}
        name, ns = meta.get("name"), meta.get("namespace", namespace)
        found: dict[Fact, Any] = {}
        if kind == "Namespace":
            found[("ns", cluster, name)] = True
        elif kind == "CustomResourceDefinition":
            found[("crd", cluster, obj["spec"]["group"], obj["spec"]["names"]["kind"])] = True
        elif kind in ("Secret", "ConfigMap", "ServiceAccount"):
            found[({"Secret": "secret", "ConfigMap": "configmap", "ServiceAccount": "sa"}[kind], cluster, ns, name)] = (
                True
            )
        elif kind == "StorageClass":
            found[("sc", cluster, name)] = True
            if (meta.get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class") == "true":
                found[("default-sc", cluster)] = True
        elif kind == "ClusterSecretStore":
            found[("store", cluster, name)] = obj
        elif kind == "ExternalSecret":
            target = ((obj.get("spec") or {}).get("target") or {}).get("name") or name
            found[("secret", cluster, ns, target)] = obj
        elif kind in ("ClusterIssuer", "Issuer"):
            found[("issuer", cluster, None if kind == "ClusterIssuer" else ns, name)] = True
        elif kind == "Certificate":  # cert-manager writes it once its issuer signs
            found[("secret", cluster, ns, (obj.get("spec") or {}).get("secretName") or name)] = True
        return found

    def objects_step(
        self, stack: str, cluster: str, address: str, label: str, namespace: str, objects: list[dict]
    ) -> Step:
        step = Step(stack, address, label)
        for obj in objects:
            step.provides.update(self.object_provides(cluster, namespace, obj))
            step.needs += self.object_needs(stack, cluster, namespace, obj)
        return step

    def chart_step(self, stack: str, cluster: str, address: str, body: dict, values: dict, label: str) -> Step:
        namespace = body.get("namespace", "default")
        step = Step(stack, address, label)
        declared = DECLARED.get(body["chart"])
        if declared is None:
            step.needs.append(
                Need(("never", body["chart"]), f"chart {body['chart']}: no ChartKinds declaration says what it renders")
            )
            return step
        own = set() if body.get("skip_crds") else set(declared.crds)
        for group, kind in own:
            step.provides[("crd", cluster, group, kind)] = True
        for api_version, kind in sorted(declared.rendered(values)):
            if (api_version.split("/")[0], kind) in own:
                continue
            step.needs.append(self.kind_need(cluster, api_version, kind, f"rendered by chart {body['chart']}"))
            if kind == "NetworkPolicy":
                step.needs.append(self.netpol_need(cluster, f"NetworkPolicy of chart {body['chart']}"))
        for account, role in service_accounts(values):
            step.provides[("sa", cluster, namespace, account)] = True
            step.needs.append(self.irsa_need(stack, cluster, namespace, account, role))
        for secret in declared.named(declared.secrets, values):
            step.needs.append(
                Need(("secret", cluster, namespace, secret), f"secret {namespace}/{secret} (chart {body['chart']})")
            )
        for storage_class in declared.named(declared.storage_classes, values):
            step.needs.append(self.class_need(cluster, storage_class, f"chart {body['chart']}"))
        step.needs = [n for n in step.needs if n is not None]
        return step

    def kubernetes_steps(self, name: str) -> tuple[list[Step], dict[str, list[str]]]:
        stack = self.stacks[name]
        cluster = self.cluster_of(name)
        assert cluster is not None
        graph: dict[str, list[str]] = {}
        steps: list[Step] = []
        addresses = [a for a, _ in resources_of(stack)]
        for address, body in resources_of(stack):
            text = json.dumps({k: v for k, v in body.items() if k != "depends_on"})
            graph[address] = [*(body.get("depends_on") or []), *(a for a in addresses if f"${{{a}." in text)]
            rtype = address.split(".")[0]
            namespace = body.get("namespace") or block(body.get("metadata")).get("namespace") or "default"
            if rtype == "helm_release":
                values = release_values(body)
                label = f"release {body['name']} ({namespace})"
                if body.get("repository"):
                    step = self.chart_step(
                        name, cluster, address, body, values, f"{label}: chart {body['chart']} {body.get('version')}"
                    )
                else:
                    step = self.objects_step(
                        name, cluster, address, label, namespace, list(values.get("objects") or [])
                    )
                if namespace not in SYSTEM_NAMESPACES:
                    step.needs.insert(0, Need(("ns", cluster, namespace), f"namespace {namespace} of the release"))
            elif rtype in ("kubernetes_namespace_v1", "kubernetes_secret_v1", "kubernetes_config_map_v1"):
                meta = block(body.get("metadata"))
                kind = {"kubernetes_namespace_v1": "Namespace", "kubernetes_secret_v1": "Secret"}.get(
                    rtype, "ConfigMap"
                )
                obj = {"apiVersion": "v1", "kind": kind, "metadata": meta}
                step = self.objects_step(name, cluster, address, f"{kind.lower()} {meta.get('name')}", namespace, [obj])
            else:
                continue
            steps.append(step)
        return steps, graph

    def gitops_steps(self, stack: str, cluster: str) -> list[Step]:
        """Flux applies the tree at once (kustomize orders namespaces first), then each HelmRelease."""
        objects = self.deploy.gitops
        namespace = self.env.namespace
        steps = [
            self.objects_step(
                stack, cluster, "flux.kustomization", "Flux kustomization (the app tree)", namespace, objects
            )
        ]
        for release in (o for o in objects if o.get("kind") == "HelmRelease"):
            spec = release.get("spec") or {}
            chart = ((spec.get("chart") or {}).get("spec") or {}).get("chart") or next(
                (
                    str(o["spec"]["url"]).rsplit("/", 1)[-1]
                    for o in objects
                    if o.get("kind") == "OCIRepository"
                    and o["metadata"]["name"] == (spec.get("chartRef") or {}).get("name")
                ),
                "",
            )
            body = {"chart": chart, "namespace": release["metadata"].get("namespace", namespace)}
            steps.append(
                self.chart_step(
                    stack,
                    cluster,
                    f"flux.{release['metadata']['name']}",
                    body,
                    spec.get("values") or {},
                    f"HelmRelease {release['metadata']['name']}: chart {chart}",
                )
            )
        return steps

    def run(self) -> Rehearsal:
        names = list(self.stacks)
        order = topological(names, self.deploy.dependencies)
        visible: dict[str, list[Step]] = {}  # stack -> its steps, once simulated
        path = f"; the deploy runs from: {self.deploy_from}" if self.env.on_aws else ""
        lines = [f"first deploy of {self.env.name} (Kubernetes {self.version}{path})"]
        if self.env.on_aws:
            held = "held to upstream's reference" if self.upstream else "not checked (no ../shared/upstream)"
            lines.append(f"controllers' IAM policies: {held}")
        blocked: list[tuple[Step, str]] = []
        flux_after = order[-1] if self.deploy.gitops else None
        for position, name in enumerate(order, 1):
            earlier = ancestors(self.deploy.dependencies, name)
            deps = sorted(d for d in self.deploy.dependencies.get(name, []) if d in self.stacks)
            lines.append(f"{position}. {name}" + (f"  (after {', '.join(deps)})" if deps else ""))
            before = [s for stack in earlier if stack in visible for s in visible[stack]]
            if problem := self.backend_problem(name, earlier):
                blocked.append((Step(name, "backend", "S3 backend"), problem))
                lines.append(f"   BLOCKED  S3 backend: {problem}")
            for problem in self.iam_problems(name):
                blocked.append((Step(name, "iam", "IAM policies"), problem))
                lines.append(f"   BLOCKED  IAM: {problem}")
            steps, graph = self.stack_steps(name)
            if not steps:
                continue
            cluster = self.cluster_of(name)
            if cluster is not None:
                api = Need(("api", cluster), self.reach_problem(cluster) or "")
                problem = self.missing(api, before, None)
                if problem:
                    blocked.append(
                        (
                            Step(name, "providers", "kubernetes and helm providers"),
                            f"cluster API unreachable: {api.what}",
                        )
                    )
                    lines.append(f"   BLOCKED  kubernetes and helm providers: cluster API unreachable: {api.what}")
            for step in topological([s.address for s in steps], graph) if graph else [s.address for s in steps]:
                current = next(s for s in steps if s.address == step)
                inside = [s for s in steps if s.address in ancestors(graph, step)]
                problems = [p for need in current.needs if (p := self.missing(need, before + inside, current))]
                status = "BLOCKED" if problems else "ok"
                lines.append(f"   {status:<8} {current.label}")
                lines += [f"            missing: {p}" for p in problems]
                blocked += [(current, p) for p in problems[:1]]
            visible[name] = steps
            if name == flux_after:
                self.flux_tail(name, order, visible, lines, blocked)
        return Rehearsal(
            self.env.name,
            [line.split(". ", 1)[1].split("  (")[0] for line in lines if re.match(r"^\d+\. ", line)],
            lines,
            blocked,
        )

    def flux_tail(
        self,
        name: str,
        order: list[str],
        visible: dict[str, list[Step]],
        lines: list[str],
        blocked: list[tuple[Step, str]],
    ) -> None:
        cluster = self.cluster_of(name)
        assert cluster is not None
        stack = f"{self.env.name}-app (Flux)"
        lines.append(f"{len(order) + 1}. {stack}  (after {name})")
        before = [s for steps in visible.values() for s in steps]
        for current in self.gitops_steps(stack, cluster):
            problems = [p for need in current.needs if (p := self.missing(need, before, current))]
            lines.append(f"   {'BLOCKED' if problems else 'ok':<8} {current.label}")
            lines += [f"            missing: {p}" for p in problems]
            blocked += [(current, p) for p in problems[:1]]
            before.append(current)

    def stack_steps(self, name: str) -> tuple[list[Step], dict[str, list[str]]]:
        if self.cluster_of(name) is not None:
            return self.kubernetes_steps(name)
        if (self.stacks[name].get("provider") or {}).get("aws"):
            return [self.aws_step(name)], {}
        return [], {}

    def missing(self, need: Need, visible: Sequence[Step], current: Step | None) -> str | None:
        """None when `need` is met by `visible` steps (or the step itself), else why not."""
        kind, cluster = need.fact[0], need.fact[1]
        if kind == "never":
            return need.what
        if kind == "role":
            return self.untrusted(need, visible)
        if cluster.startswith("context:") and (
            kind in ("api", "default-sc") or need.fact[2:] == (CLUSTER_STORAGE["existing"][0],)
        ):
            return None  # what a kind cluster comes with (its API on the laptop, its `standard` default class)
        # A step provides to itself (a chart's CRDs go in before its templates; a Secret beside its pod),
        # except a ClusterSecretStore, which must exist before an ExternalSecret in the same release is read.
        pool = [*visible, *([current] if current is not None and kind != "store" else [])]
        providers = [s.provides[need.fact] for s in pool if need.fact in s.provides]
        if not providers:
            return f"{need.what}: {need.absent}"
        if kind == "secret" and all(isinstance(p, dict) for p in providers):
            reasons = [self.unwritten(p, cluster, visible) for p in providers]
            if all(reasons):
                return f"{need.what}: {reasons[0]}"
        return None

    @staticmethod
    def untrusted(need: Need, visible: Sequence[Step]) -> str | None:
        stack, address, subject, provider = need.fact[1:]
        trusted = next(
            (s.provides[("role", stack, address)] for s in visible if ("role", stack, address) in s.provides), None
        )
        if trusted is None:
            return f"{need.what}: no stack applied before this one creates it"
        if subject in trusted or (subject, provider) in trusted:
            return None
        names = sorted(f"{t[0]} via {t[1][1] if t[1] else '?'}" if isinstance(t, tuple) else t for t in trusted)
        return f"{need.what}: its trust names {names or 'nothing with audience sts.amazonaws.com'}"

    def unwritten(self, external_secret: dict, cluster: str, visible: Sequence[Step]) -> str | None:
        """Why the ExternalSecret cannot build its Secret yet (a remote key nobody wrote), or None."""
        spec = external_secret.get("spec") or {}
        default = (spec.get("secretStoreRef") or {}).get("name")
        for source in [*(spec.get("dataFrom") or []), *(spec.get("data") or [])]:
            if "generatorRef" in (source.get("sourceRef") or {}):
                continue
            key = (source.get("extract") or source.get("find") or source.get("remoteRef") or {}).get("key")
            store_name = ((source.get("sourceRef") or {}).get("storeRef") or {}).get("name") or default
            store = next(
                (
                    s.provides[("store", cluster, store_name)]
                    for s in visible
                    if ("store", cluster, store_name) in s.provides
                ),
                None,
            )
            if store is None:
                return f"ExternalSecret {object_id(external_secret)}: its store {store_name} does not exist yet"
            region = ((store.get("spec") or {}).get("provider") or {}).get("aws", {}).get("region")
            if not any(("aws-secret", region, key) in s.provides for s in visible):
                writer = self.writer_of(region, key)
                return (
                    f"ExternalSecret {object_id(external_secret)} reads {key} in {region} (store {store_name}), "
                    f"which no stack applied before writes"
                    + (f" (written later by {writer})" if writer else " (no stack writes it)")
                )
        return None

    def writer_of(self, region: str, key: str) -> str | None:
        for name in self.stacks:
            if (
                (self.stacks[name].get("provider") or {}).get("aws")
                and self.cluster_of(name) is None
                and ("aws-secret", region, key) in self.aws_step(name).provides
            ):
                return name
        return None


def rehearse(deploy: Deploy) -> Rehearsal:
    return Simulation(deploy).run()


# --- from a build to a Deploy ---------------------------------------------------------------------


def reference_data() -> Path | None:
    """The upstream reference data beside the repository (`../shared/upstream`), or None without it."""
    from burrow_tools import iam_conformance as iam  # noqa: PLC0415

    try:
        return iam.upstream_dir(ROOT)
    except iam.UpstreamMissing:
        return None


def deploy_of(built: Any, stacks: Mapping[str, dict], outdir: Path) -> Deploy:
    """The `Deploy` of one built environment (`burrow.environment.EnvironmentStacks`) whose stacks
    were synthesized into `outdir` (`stacks` holds them parsed, by name)."""
    names = [stack.node.id for stack in built.stacks]
    manifest = json.loads((outdir / "manifest.json").read_text())["stacks"]
    gitops: list[dict] = []
    tree = outdir / "gitops" / built.env.name
    if built.gitops is not None and tree.is_dir():
        for path in sorted(tree.rglob("*.yaml")):
            gitops += [
                doc
                for doc in yaml.safe_load_all(path.read_text())  # the tree's kustomize file is no object
                if isinstance(doc, dict) and not doc.get("apiVersion", "").startswith("kustomize.config.k8s.io")
            ]
    return Deploy(
        upstream=reference_data(),
        env=built.env,
        stacks={name: stacks[name] for name in names},
        dependencies={name: list(manifest[name].get("dependencies") or []) for name in names},
        gitops=gitops,
    )


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m burrow_tools.rehearse <env>", file=sys.stderr)
        return 2
    from burrow.config.loader import load_environments  # noqa: PLC0415
    from burrow.config.release import RELEASE_VARIABLE  # noqa: PLC0415
    from burrow.errors import BurrowError  # noqa: PLC0415
    from burrow.synth import released  # noqa: PLC0415

    try:
        # The images as the deploy would pin them (a production environment needs the release file).
        configs = released(load_environments(ROOT / "environments", [argv[0]]), os.environ.get(RELEASE_VARIABLE) or None,
                           preview=False)
    except BurrowError as exc:
        print(f"burrow: configuration error:\n{exc}", file=sys.stderr)
        return 2
    from cdktf import App  # noqa: PLC0415

    from burrow.synth import build_app, export_gitops, synthesize  # noqa: PLC0415

    with tempfile.TemporaryDirectory(prefix="burrow-rehearse-") as tmp:
        outdir = Path(tmp)
        app = App(outdir=str(outdir))
        try:
            built = build_app(app, configs, ROOT / "helm")
        except BurrowError as exc:
            print(f"burrow: configuration error:\n{exc}", file=sys.stderr)
            return 2
        synthesize(app)
        export_gitops(built[0], outdir)
        stacks = {p.parent.name: json.loads(p.read_text()) for p in (outdir / "stacks").glob("*/cdk.tf.json")}
        result = rehearse(deploy_of(built[0], stacks, outdir))
    print(result.report())
    return 1 if result.blocked else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
