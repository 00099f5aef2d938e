"""Synth-time guardrails: rules per tier, checked by a cdktf Aspect on every Burrow workload.

Every Burrow construct that deploys something (`AppNamespace`, `RabbitMqBroker`, `QueueWorker`)
puts its stack under guardrails, so another team's stack gets the same checks. A stack's tier
defaults to `production` (the safe choice); `Guardrails.configure` sets it and the waivers.
A violation fails `synth` with one line per problem (stack, construct path, rule, what to change);
a waived rule is reported with its written reason instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import jsii
from cdktf import Aspects, IAspect, TerraformStack

from burrow.config.schema import Tier, Waiver
from constructs import Construct, IConstruct, IValidation

STAGING_AND_UP = (Tier.STAGING, Tier.PRODUCTION)
PRODUCTION = (Tier.PRODUCTION,)
ALL_TIERS = tuple(Tier)


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
    applies_to: str  # "workload", "broker" or "namespace"
    summary: str
    check: Callable[[object], list[str]]


def _containers(worker) -> list[dict]:
    return worker.deployment["spec"]["template"]["spec"]["containers"]


def _kinds(worker) -> set[str]:
    return {obj["kind"] for obj in worker.objects}


def _resources(worker) -> list[str]:
    missing = []
    for container in _containers(worker):
        resources = container.get("resources", {})
        for section in ("requests", "limits"):
            for amount in ("cpu", "memory"):
                if amount not in resources.get(section, {}):
                    missing.append(f"container {container['name']}: set resources.{section}.{amount}")
    return missing


def _probes(worker) -> list[str]:
    return [
        f"container {c['name']}: add a {probe}"
        for c in _containers(worker)
        for probe in ("livenessProbe", "readinessProbe")
        if probe not in c
    ]


def _security(worker) -> list[str]:
    problems = []
    pod = worker.deployment["spec"]["template"]["spec"]
    for container in _containers(worker):
        ctx = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
        if ctx.get("privileged"):
            problems.append(f"container {container['name']}: must not be privileged")
        if not ctx.get("runAsNonRoot") or ctx.get("runAsUser") == 0:
            problems.append(f"container {container['name']}: must run as non-root (runAsNonRoot, a non-zero UID)")
        if ctx.get("allowPrivilegeEscalation", True):
            problems.append(f"container {container['name']}: set allowPrivilegeEscalation: false")
    return problems


def _image_tag(worker) -> list[str]:
    return [
        f"container {c['name']}: image {c['image']} uses 'latest'; pin a version or digest"
        for c in _containers(worker)
        if c["image"].endswith(":latest") or (":" not in c["image"].rsplit("/", 1)[-1] and "@" not in c["image"])
    ]


def _image_digest(worker) -> list[str]:
    return [
        f"container {c['name']}: pin image {c['image']} by digest (image.digest: sha256:…)"
        for c in _containers(worker)
        if "@sha256:" not in c["image"]
    ]


def _replicas(worker) -> list[str]:
    return [] if worker.props.replicas >= 2 else [f"run at least 2 replicas (replicas is {worker.props.replicas})"]


def _pdb(worker) -> list[str]:
    return [] if "PodDisruptionBudget" in _kinds(worker) else ["add a PodDisruptionBudget (replicas >= 2 creates one)"]


def _worker_network_policy(worker) -> list[str]:
    return [] if "NetworkPolicy" in _kinds(worker) else ["add a NetworkPolicy for the workload"]


def _namespace_default_deny(namespace) -> list[str]:
    return [] if namespace.policies is not None else ["keep the namespace's default-deny NetworkPolicy (default_deny=True)"]


def _broker_replicas(broker) -> list[str]:
    replicas = broker.props.replicas
    return [] if replicas >= 3 else [f"run 3 RabbitMQ replicas (rabbitmq.replicas is {replicas})"]


def _broker_persistence(broker) -> list[str]:
    return [] if broker.props.persistence.enabled else ["turn on rabbitmq.persistence.enabled"]


def _broker_anti_affinity(broker) -> list[str]:
    return [] if broker.props.anti_affinity == "hard" else ["set rabbitmq.anti_affinity: hard"]


RULES = (
    Rule("workload-resources", ALL_TIERS, "workload", "requests and limits for CPU and memory", _resources),
    Rule("workload-security", ALL_TIERS, "workload", "non-root, unprivileged, no privilege escalation", _security),
    Rule("image-tag", ALL_TIERS, "workload", "no `latest` or untagged images", _image_tag),
    Rule("workload-probes", STAGING_AND_UP, "workload", "liveness and readiness probes", _probes),
    Rule("workload-replicas", STAGING_AND_UP, "workload", "at least 2 replicas", _replicas),
    Rule("workload-pdb", STAGING_AND_UP, "workload", "a PodDisruptionBudget", _pdb),
    Rule("workload-network-policy", STAGING_AND_UP, "workload", "a NetworkPolicy", _worker_network_policy),
    Rule("namespace-default-deny", STAGING_AND_UP, "namespace", "default-deny NetworkPolicy", _namespace_default_deny),
    Rule("image-digest", PRODUCTION, "workload", "images pinned by digest", _image_digest),
    Rule("rabbitmq-replicas", PRODUCTION, "broker", "3 RabbitMQ replicas", _broker_replicas),
    Rule("rabbitmq-persistence", PRODUCTION, "broker", "persistent RabbitMQ volumes", _broker_persistence),
    Rule("rabbitmq-anti-affinity", PRODUCTION, "broker", "hard anti-affinity between brokers", _broker_anti_affinity),
)
RULE_IDS = tuple(rule.id for rule in RULES)


def _kind_of(node: IConstruct) -> str | None:
    # Imported here: the constructs import this module to register themselves.
    from burrow.app.namespace import AppNamespace
    from burrow.app.rabbitmq import RabbitMqBroker
    from burrow.app.worker import QueueWorker

    for cls, kind in ((QueueWorker, "workload"), (RabbitMqBroker, "broker"), (AppNamespace, "namespace")):
        if isinstance(node, cls):
            return kind
    return None


@jsii.implements(IAspect)
class _GuardrailAspect:
    def __init__(self, guardrails: Guardrails) -> None:
        self._guardrails = guardrails

    def visit(self, node: IConstruct) -> None:
        kind = _kind_of(node)
        if kind is not None:
            self._guardrails.evaluate(node, kind)


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

    def evaluate(self, node: IConstruct, kind: str) -> None:
        path = node.node.path
        if path in self._seen:  # aspects may visit a node more than once
            return
        self._seen.add(path)
        for rule in RULES:
            if rule.applies_to != kind or self.tier not in rule.tiers:
                continue
            for message in rule.check(node):
                finding = Finding(self.stack_name, path, rule.id, message)
                if rule.id in self.waivers:
                    self.waived.append((finding, self.waivers[rule.id]))
                else:
                    self.violations.append(finding)


def guardrails_of(stacks: Iterable[TerraformStack]) -> list[Guardrails]:
    return [g for g in (getattr(stack, "_burrow_guardrails", None) for stack in stacks) if g is not None]
