"""Synth-time guardrails: rules per tier, checked by a cdktf Aspect on every construct that is `Policed`.

Rules read what a construct *delivers* (`PolicyFacts`: its final objects and rendered chart
values, after every escape-hatch edit), never the props it was given, and never import the
construct classes. Every Burrow construct that deploys something (`AppNamespace`,
`RabbitMqBroker`, `QueueWorker`) puts its stack under guardrails, so another team's stack
gets the same checks. A stack's tier
defaults to `production` (the safe choice); `Guardrails.configure` sets it and the waivers.
A violation fails `synth` with one line per problem (stack, construct path, rule, what to change);
a waived rule is reported with its written reason instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jsii
from cdktf import Aspects, IAspect, TerraformStack

from burrow.config.schema import Tier, Waiver
from burrow.k8s.pod_security import pod_specs, restricted_violations
from burrow.policy.facts import Policed, PolicyFacts, Subject
from constructs import Construct, IConstruct, IValidation

STAGING_AND_UP = (Tier.STAGING, Tier.PRODUCTION)
PRODUCTION = (Tier.PRODUCTION,)
PREVIEW = (Tier.PREVIEW,)
ALL_TIERS = tuple(Tier)
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "ReplicaSet")


@dataclass(frozen=True)
class Finding:
    stack: str
    path: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.stack}: {self.path}: [{self.rule}] {self.message}"


@dataclass(frozen=True)
class Rule:
    """One guardrail. `check` returns what to change (empty: compliant)."""

    id: str
    tiers: tuple[Tier, ...]
    applies_to: Subject
    summary: str
    check: Callable[[PolicyFacts], list[str]]


def _pods(facts: PolicyFacts) -> list[dict]:
    return [pod for obj in facts.objects for pod in pod_specs(obj)]


def _containers(facts: PolicyFacts, init: bool = False) -> list[dict]:
    keys = ("initContainers", "containers") if init else ("containers",)
    return [c for pod in _pods(facts) for key in keys for c in pod.get(key) or []]


def _kinds(facts: PolicyFacts) -> set[str]:
    return {obj.get("kind") for obj in facts.objects}


def _resources(facts: PolicyFacts) -> list[str]:
    missing = []
    for container in _containers(facts, init=True):
        resources = container.get("resources") or {}
        for section in ("requests", "limits"):
            for amount in ("cpu", "memory"):
                if amount not in (resources.get(section) or {}):
                    missing.append(f"container {container['name']}: set resources.{section}.{amount}")
    return missing


def _probes(facts: PolicyFacts) -> list[str]:
    return [
        f"container {c['name']}: add a {probe}"
        for c in _containers(facts)
        for probe in ("livenessProbe", "readinessProbe")
        if probe not in c
    ]


def _security(facts: PolicyFacts) -> list[str]:
    """The `restricted` Pod Security Standard, which Burrow's namespaces enforce."""
    return [problem for pod in _pods(facts) for problem in restricted_violations(pod)]


def _untagged(image: str) -> bool:
    return image.endswith(":latest") or (":" not in image.rsplit("/", 1)[-1] and "@" not in image)


def _image_tag(facts: PolicyFacts) -> list[str]:
    return [
        f"container {c['name']}: image {c['image']} uses 'latest'; pin a version or digest"
        for c in _containers(facts, init=True)
        if _untagged(c["image"])
    ]


def _image_digest(facts: PolicyFacts) -> list[str]:
    return [
        f"container {c['name']}: pin image {c['image']} by digest (image.digest: sha256:…)"
        for c in _containers(facts, init=True)
        if "@sha256:" not in c["image"]
    ]


def _chart_images(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(where, reference) of each image a chart's values set: `image` (registry, repository, tag,
    digest, as Bitnami's charts take it) and every sidecar's and init container's `image` string."""
    found = []
    image = values.get("image")
    if isinstance(image, Mapping):
        base = "/".join(part for part in (image.get("registry"), image.get("repository")) if part)
        digest = image.get("digest")
        found.append(("image", f"{base}@{digest}" if digest else f"{base}:{image.get('tag')}"))
    for key in ("sidecars", "initContainers"):
        found += [(f"{key} {c.get('name')}", c["image"]) for c in values.get(key) or [] if "image" in c]
    return found


def _chart_image_digest(facts: PolicyFacts) -> list[str]:
    return [
        f"{where}: pin image {image} by digest (a release file's `third_party` entry, or rabbitmq.image.digest)"
        for where, image in _chart_images(facts.chart_values)
        if "@sha256:" not in image
    ]


def _replicas_of(facts: PolicyFacts) -> int:
    """The replicas a workload keeps: its autoscaler's minimum, else the Deployment's count (default 1)."""
    for obj in facts.objects:
        if obj.get("kind") == "HorizontalPodAutoscaler":
            return int(obj["spec"].get("minReplicas", 1))
        if obj.get("kind") == "ScaledObject":
            return int(obj["spec"].get("minReplicaCount", 0))
    counts = [int((obj.get("spec") or {}).get("replicas", 1)) for obj in facts.objects if obj.get("kind") in WORKLOAD_KINDS]
    return min(counts, default=0)


def _replicas(facts: PolicyFacts) -> list[str]:
    replicas = _replicas_of(facts)
    return [] if replicas >= 2 else [f"run at least 2 replicas (replicas is {replicas})"]


def _pdb(facts: PolicyFacts) -> list[str]:
    return [] if "PodDisruptionBudget" in _kinds(facts) else ["add a PodDisruptionBudget (replicas >= 2 creates one)"]


def _worker_network_policy(facts: PolicyFacts) -> list[str]:
    return [] if "NetworkPolicy" in _kinds(facts) else ["add a NetworkPolicy for the workload"]


def _is_default_deny(obj: Mapping[str, Any]) -> bool:
    spec = obj.get("spec") or {}
    return (
        obj.get("kind") == "NetworkPolicy"
        and not (spec.get("podSelector") or {})
        and {"Ingress", "Egress"} <= set(spec.get("policyTypes") or [])
        and not spec.get("ingress")
        and not spec.get("egress")
    )


def _namespace_default_deny(facts: PolicyFacts) -> list[str]:
    if any(_is_default_deny(obj) for obj in facts.objects):
        return []
    return ["keep the namespace's default-deny NetworkPolicy (default_deny=True)"]


def _namespace_quota(facts: PolicyFacts) -> list[str]:
    missing = [kind for kind in ("ResourceQuota", "LimitRange") if kind not in _kinds(facts)]
    return [f"add a {kind} to the namespace (AppNamespace quota=…)" for kind in missing]


def _broker_replicas(facts: PolicyFacts) -> list[str]:
    # A key nobody set falls back to the Bitnami chart's own default, as Helm would.
    replicas = facts.chart_values.get("replicaCount", 1)
    return [] if replicas >= 3 else [f"run 3 RabbitMQ replicas (replicaCount is {replicas})"]


def _broker_persistence(facts: PolicyFacts) -> list[str]:
    enabled = (facts.chart_values.get("persistence") or {}).get("enabled", True)
    return [] if enabled else ["turn on rabbitmq.persistence.enabled (persistence.enabled is false)"]


def _broker_anti_affinity(facts: PolicyFacts) -> list[str]:
    preset = facts.chart_values.get("podAntiAffinityPreset", "soft")
    return [] if preset == "hard" else [f"set rabbitmq.anti_affinity: hard (podAntiAffinityPreset is {preset})"]


def _pools(facts: PolicyFacts) -> list[Mapping[str, Any]]:
    return [obj for obj in facts.objects if obj.get("kind") == "NodePool"]


def _pool_limits(facts: PolicyFacts) -> list[str]:
    return [
        f"NodePool {pool['metadata']['name']}: set limits on cpu and memory (cluster.eks.karpenter.limits)"
        for pool in _pools(facts)
        if not {"cpu", "memory"} <= set(pool["spec"].get("limits") or {})
    ]


def _pool_budget(facts: PolicyFacts) -> list[str]:
    return [
        f"NodePool {pool['metadata']['name']}: set a disruption budget (cluster.eks.karpenter.disruption_budget)"
        for pool in _pools(facts)
        if not (pool["spec"].get("disruption") or {}).get("budgets")
    ]


#: What a public Ingress may route: the producer's publish endpoint and its liveness.
PUBLIC_PATHS = ("/publish", "/health")


def _public_ingress(facts: PolicyFacts) -> list[str]:
    """An Ingress routes only the public paths, exactly, and serves them over TLS with HTTP redirected."""
    problems = []
    for ingress in (obj for obj in facts.objects if obj.get("kind") == "Ingress"):
        name = ingress["metadata"]["name"]
        annotations = ingress["metadata"].get("annotations") or {}
        spec = ingress.get("spec") or {}
        if spec.get("defaultBackend"):
            problems.append(f"Ingress {name}: remove spec.defaultBackend (only {', '.join(PUBLIC_PATHS)} are public)")
        for rule in spec.get("rules") or []:
            for path in (rule.get("http") or {}).get("paths") or []:
                if path.get("path") not in PUBLIC_PATHS or path.get("pathType") != "Exact":
                    problems.append(f"Ingress {name}: route only {', '.join(PUBLIC_PATHS)} with pathType Exact, not "
                                    f"{path.get('path')!r} ({path.get('pathType')})")
        if not spec.get("tls") or annotations.get("alb.ingress.kubernetes.io/ssl-redirect") != "443":
            problems.append(f"Ingress {name}: serve HTTPS (spec.tls) and redirect HTTP to it (ssl-redirect: '443')")
    return problems


def _capacity_types(pool: Mapping[str, Any]) -> list[str]:
    requirements = pool["spec"]["template"]["spec"].get("requirements") or []
    found = [r for r in requirements if r.get("key") == "karpenter.sh/capacity-type"]
    # No requirement: Karpenter's default, on-demand only.
    return [v for r in found if r.get("operator") == "In" for v in r.get("values", [])] or ["on-demand"]


def _pool_on_demand(facts: PolicyFacts) -> list[str]:
    return [
        f"NodePool {pool['metadata']['name']}: capacity types {', '.join(_capacity_types(pool))}; production runs "
        "on on-demand only (cluster.eks.karpenter.capacity_types: [on-demand]), or waive nodepool-on-demand "
        "with the reason spot is acceptable"
        for pool in _pools(facts)
        if set(_capacity_types(pool)) != {"on-demand"}
    ]


RULES = (
    Rule("workload-resources", ALL_TIERS, "workload", "requests and limits for CPU and memory", _resources),
    Rule("workload-security", ALL_TIERS, "workload", "the restricted Pod Security Standard", _security),
    Rule("image-tag", ALL_TIERS, "workload", "no `latest` or untagged images", _image_tag),
    Rule("workload-probes", STAGING_AND_UP, "workload", "liveness and readiness probes", _probes),
    Rule("workload-replicas", STAGING_AND_UP, "workload", "at least 2 replicas", _replicas),
    Rule("workload-pdb", STAGING_AND_UP, "workload", "a PodDisruptionBudget", _pdb),
    Rule("workload-network-policy", STAGING_AND_UP, "workload", "a NetworkPolicy", _worker_network_policy),
    Rule("namespace-default-deny", STAGING_AND_UP, "namespace", "default-deny NetworkPolicy", _namespace_default_deny),
    Rule("namespace-quota", PREVIEW, "namespace", "a ResourceQuota and a LimitRange", _namespace_quota),
    Rule("image-digest", PRODUCTION, "workload", "images pinned by digest", _image_digest),
    Rule("image-digest", PRODUCTION, "broker", "the broker's and its sidecars' images pinned by digest",
         _chart_image_digest),
    Rule("rabbitmq-replicas", PRODUCTION, "broker", "3 RabbitMQ replicas", _broker_replicas),
    Rule("rabbitmq-persistence", PRODUCTION, "broker", "persistent RabbitMQ volumes", _broker_persistence),
    Rule("rabbitmq-anti-affinity", PRODUCTION, "broker", "hard anti-affinity between brokers", _broker_anti_affinity),
    Rule("nodepool-limits", PRODUCTION, "nodepool", "NodePool cpu and memory limits", _pool_limits),
    Rule("nodepool-disruption-budget", PRODUCTION, "nodepool", "a NodePool disruption budget", _pool_budget),
    Rule("nodepool-on-demand", PRODUCTION, "nodepool", "on-demand capacity only", _pool_on_demand),
    Rule("public-ingress", STAGING_AND_UP, "ingress", "only /publish and /health, over HTTPS", _public_ingress),
)
RULE_IDS = tuple(dict.fromkeys(rule.id for rule in RULES))


@jsii.implements(IAspect)
class _GuardrailAspect:
    def __init__(self, guardrails: Guardrails) -> None:
        self._guardrails = guardrails

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, Policed):
            self._guardrails.evaluate(node.node.path, node.policy_facts())


@jsii.implements(IValidation)
class _Violations:
    def __init__(self, guardrails: Guardrails) -> None:
        self._guardrails = guardrails

    def validate(self) -> list[str]:
        return [f"guardrail violation: {finding}" for finding in self._guardrails.violations]


@dataclass
class Guardrails:
    """The guardrails of one stack: its tier, its waivers, and what the last synth found."""

    stack_name: str
    tier: Tier = Tier.PRODUCTION
    waivers: dict[str, str] = field(default_factory=dict)
    violations: list[Finding] = field(default_factory=list)
    waived: list[tuple[Finding, str]] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)

    @staticmethod
    def of(scope: Construct) -> Guardrails:
        """The guardrails of `scope`'s stack, attached (tier production, no waivers) on first use."""
        stack = TerraformStack.of(scope)
        existing = getattr(stack, "_burrow_guardrails", None)
        if existing is not None:
            return existing
        guardrails = Guardrails(stack.node.id)
        stack._burrow_guardrails = guardrails  # noqa: SLF001 - one well-known attribute per stack
        Aspects.of(stack).add(_GuardrailAspect(guardrails))
        stack.node.add_validation(_Violations(guardrails))
        return guardrails

    @staticmethod
    def configure(scope: Construct, tier: Tier, waivers: Sequence[Waiver] = ()) -> Guardrails:
        """Set the tier and waivers of `scope`'s stack. An unknown rule in a waiver is an error."""
        guardrails = Guardrails.of(scope)
        unknown = sorted({w.rule for w in waivers} - set(RULE_IDS))
        if unknown:
            from burrow.errors import PropsError

            raise PropsError(guardrails.stack_name, "waivers", unknown, f"known rules: {', '.join(RULE_IDS)}")
        guardrails.tier = tier
        guardrails.waivers = {w.rule: w.reason for w in waivers}
        return guardrails

    def evaluate(self, path: str, facts: PolicyFacts) -> None:
        """Check what the construct at `path` delivers against the rules of this stack's tier."""
        if path in self._seen:  # aspects may visit a node more than once
            return
        self._seen.add(path)
        for rule in RULES:
            if rule.applies_to != facts.subject or self.tier not in rule.tiers:
                continue
            for message in rule.check(facts):
                finding = Finding(self.stack_name, path, rule.id, message)
                if rule.id in self.waivers:
                    self.waived.append((finding, self.waivers[rule.id]))
                else:
                    self.violations.append(finding)


def guardrails_of(stacks: Iterable[TerraformStack]) -> list[Guardrails]:
    return [g for g in (getattr(stack, "_burrow_guardrails", None) for stack in stacks) if g is not None]


def guardrail_report(violations: Sequence[Finding]) -> str:
    """What a refused synth prints: one line per violation and what to do."""
    lines = "".join(f"  {finding}\n" for finding in violations)
    return f"synth refused by guardrails:\n{lines}Fix the configuration, or waive a rule in guardrails.waivers with a reason."


def violations_in(stacks: Iterable[TerraformStack]) -> list[Finding]:
    return [finding for guardrails in guardrails_of(stacks) for finding in guardrails.violations]
