"""Synth-time guardrails: rules per tier, checked by a cdktf Aspect on everything a stack delivers.

Rules read what reaches the cluster (`PolicyFacts`: final objects and rendered chart values, after
every escape-hatch edit), never the props, and never import the construct classes. A construct
that is `Policed` answers for what it delivers; every other `helm_release` and
`kubernetes_manifest` in the stack (a bare `KubernetesObjects`, a raw resource, a third-party
chart) is read from the resource itself (`burrow.policy.delivered`). Every Burrow construct that
deploys something puts its stack under guardrails, and `burrow.synthesize(app)` puts every stack
of the app under them. A stack's tier defaults to `production` (the safe choice);
`Guardrails.configure` sets it, the waivers (one rule on one construct path, with a reason), a
team's own rule pack, and the wording of refusals. A violation fails `synth` with one line per
problem (stack, construct path, rule, what to change); a waived finding is reported with its
written reason instead, and every waiver is recorded in its stack's JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import jsii
from cdktf import Aspects, IAspect, TerraformResource, TerraformStack
from pydantic import Field

from burrow.errors import PropsError
from burrow.k8s.pod_security import pod_specs, restricted_violations
from burrow.pins import PINS
from burrow.policy.delivered import delivered_facts
from burrow.policy.facts import Policed, PolicyFacts, Subject
from burrow.props import Props, props_for
from burrow.settings import Tier
from constructs import Construct, IConstruct, IValidation

STAGING_AND_UP = (Tier.STAGING, Tier.PRODUCTION)
PRODUCTION = (Tier.PRODUCTION,)
PREVIEW = (Tier.PREVIEW,)
ALL_TIERS = tuple(Tier)
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "ReplicaSet")
#: Kinds whose pods run until replaced (probes apply); a Job's or CronJob's run to completion.
SERVING_KINDS = (*WORKLOAD_KINDS, "DaemonSet", "Pod")


class Waiver(Props):
    """Turns one rule off for one construct: `path` is the construct path a refusal names
    (`orders/mq`), and covers what lies under it. The reason is printed at every synth and
    recorded in the stack's JSON. A bad field is Burrow's one-line `PropsError`."""

    rule: str = Field(min_length=1)
    path: str = Field(min_length=1)
    reason: str = Field(min_length=20, description="why this is acceptable, for a reviewer")

    def covers(self, finding: Finding) -> bool:
        return finding.rule == self.rule and (finding.path == self.path or finding.path.startswith(f"{self.path}/"))


@dataclass(frozen=True)
class Finding:
    """One problem a rule found: in which stack, on which construct path, under which rule."""

    stack: str
    path: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.stack}: {self.path}: [{self.rule}] {self.message}"


@dataclass(frozen=True)
class Rule:
    """One guardrail. `check` returns what to change (empty: compliant); it runs on the facts of
    each subject in `applies_to` in the tiers listed. A team's own rules are `Rule`s too
    (`Guardrails.configure(stack, tier, rules=[...])`)."""

    id: str
    tiers: tuple[Tier, ...]
    applies_to: Subject | tuple[Subject, ...]
    summary: str
    check: Callable[[PolicyFacts], list[str]]

    def applies(self, facts: PolicyFacts, tier: Tier) -> bool:
        subjects = (self.applies_to,) if isinstance(self.applies_to, str) else self.applies_to
        return facts.subject in subjects and tier in self.tiers


@dataclass(frozen=True)
class Wording:
    """How a stack's refusals name what to change. By default in props (the construct path and the
    prop); an application that builds stacks from its own files gives its keys instead."""

    #: Per subject, the stack's own name for a prop a rule names (`anti_affinity` -> a file's key).
    settings: Mapping[Subject, Mapping[str, str]] = field(default_factory=dict)
    #: The report's last line: how to fix or waive.
    advice: str = ("Fix the props named above, or waive the rule for that construct path with "
                   "Waiver(rule=..., path=..., reason=...) in Guardrails.configure.")


PROPS = Wording()


def _pods(facts: PolicyFacts, kinds: Sequence[str] | None = None) -> list[dict]:
    return [pod for obj in facts.objects if kinds is None or obj.get("kind") in kinds for pod in pod_specs(obj)]


def _containers(facts: PolicyFacts, init: bool = False, kinds: Sequence[str] | None = None) -> list[dict]:
    keys = ("initContainers", "containers") if init else ("containers",)
    return [c for pod in _pods(facts, kinds) for key in keys for c in pod.get(key) or []]


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
        for c in _containers(facts, kinds=SERVING_KINDS)
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
        f"{where}: pin image {image} by digest ({facts.setting('image.digest')})"
        for where, image in _chart_images(facts.chart_values)
        if "@sha256:" not in image
    ]


def _addon_image_digest(facts: PolicyFacts) -> list[str]:
    """Every image the chart's pin lists (`burrow.pins.ChartImage`) has a digest at each of its values paths."""
    pin = PINS.get(facts.chart)  # a companion chart (karpenter-crd) deploys no image of its pin's
    images = pin.images if pin is not None else ()
    return [
        f"release {facts.release} (chart {facts.chart}): pin image "
        f"{image.reference} by digest at {path} "
        f"({facts.setting('digests')}, image {image.name!r})"
        for image in images
        for path in image.unpinned(facts.chart_values)
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


def _replicated(facts: PolicyFacts) -> bool:
    """Whether the facts hold a workload that keeps a number of replicas (not a Job, a DaemonSet)."""
    return bool(_kinds(facts) & set(WORKLOAD_KINDS))


def _replicas(facts: PolicyFacts) -> list[str]:
    replicas = _replicas_of(facts)
    return [] if replicas >= 2 or not _replicated(facts) else [f"run at least 2 replicas (replicas is {replicas})"]


def _pdb(facts: PolicyFacts) -> list[str]:
    if "PodDisruptionBudget" in _kinds(facts) or not _replicated(facts):
        return []
    return ["add a PodDisruptionBudget (replicas >= 2 creates one)"]


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
    return [] if enabled else [f"turn on {facts.setting('persistence.enabled')} (persistence.enabled is false)"]


def _broker_anti_affinity(facts: PolicyFacts) -> list[str]:
    preset = facts.chart_values.get("podAntiAffinityPreset", "soft")
    return [] if preset == "hard" else [f"set {facts.setting('anti_affinity')}: hard (podAntiAffinityPreset is {preset})"]


#: AMQP without TLS (the broker's plain listener), and the Service types that reach beyond the cluster.
PLAIN_AMQP_PORT = 5672
EXPOSED_SERVICE_TYPES = ("LoadBalancer", "NodePort")


def _broker_exposed_over_tls(facts: PolicyFacts) -> list[str]:
    """A broker port that leaves the cluster (another region's links, through a load balancer)
    carries AMQP over TLS only: no plain AMQP on a LoadBalancer or NodePort Service, the broker's
    own or the chart's."""
    problems = [
        f"Service {(obj.get('metadata') or {}).get('name')} exposes plain AMQP ({PLAIN_AMQP_PORT}) beyond the cluster: "
        f"expose the broker's TLS port only"
        for obj in facts.objects
        if obj.get("kind") == "Service" and (obj.get("spec") or {}).get("type") in EXPOSED_SERVICE_TYPES
        and any(port.get("targetPort", port.get("port")) in (PLAIN_AMQP_PORT, "amqp")
                for port in (obj.get("spec") or {}).get("ports") or [])
    ]
    service = facts.chart_values.get("service") or {}
    tls = (facts.chart_values.get("auth") or {}).get("tls") or {}
    tls_only = _turned_on(tls.get("enabled")) and service.get("portEnabled") is False
    if service.get("type") in EXPOSED_SERVICE_TYPES and not tls_only:
        problems.append(f"service.type {service['type']} exposes plain AMQP ({PLAIN_AMQP_PORT}) beyond the cluster: "
                        "keep the chart's Service ClusterIP, or enable auth.tls and set service.portEnabled: false")
    return problems


def _pools(facts: PolicyFacts) -> list[Mapping[str, Any]]:
    return [obj for obj in facts.objects if obj.get("kind") == "NodePool"]


def _pool_limits(facts: PolicyFacts) -> list[str]:
    return [
        f"NodePool {pool['metadata']['name']}: set limits on cpu and memory ({facts.setting('limits')})"
        for pool in _pools(facts)
        if not {"cpu", "memory"} <= set(pool["spec"].get("limits") or {})
    ]


def _pool_budget(facts: PolicyFacts) -> list[str]:
    return [
        f"NodePool {pool['metadata']['name']}: set a disruption budget ({facts.setting('disruption_budget')})"
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
        f"on on-demand only ({facts.setting('capacity_types')}: [on-demand]), or waive nodepool-on-demand "
        "with the reason spot is acceptable"
        for pool in _pools(facts)
        if set(_capacity_types(pool)) != {"on-demand"}
    ]


def _walk(values: Any, where: str = "") -> Iterator[tuple[str, str, Any]]:
    """(where, key, value) for every key of every mapping in a chart's values, nested ones included."""
    if isinstance(values, Mapping):
        for key, value in values.items():
            yield where, str(key), value
            yield from _walk(value, f"{where}.{key}" if where else str(key))
    elif isinstance(values, list):
        for index, item in enumerate(values):
            yield from _walk(item, f"{where}[{index}]")


def _values_images(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(where, reference) of each image a chart's values name: an `image` string, or an `image`
    mapping with a tag or digest (one without either keeps the chart's own pinned default)."""
    found = []
    for where, key, value in _walk(values):
        at = f"{where}.{key}" if where else key
        if key == "image" and isinstance(value, str):
            found.append((at, value))
        elif key == "image" and isinstance(value, Mapping) and (value.get("tag") or value.get("digest")):
            base = "/".join(str(part) for part in (value.get("registry"), value.get("repository")) if part)
            found.append((at, f"{base}@{value['digest']}" if value.get("digest") else f"{base}:{value['tag']}"))
    return found


def _chart_image_tag(facts: PolicyFacts) -> list[str]:
    return [f"{where}: image {image} uses 'latest'; pin a version or digest"
            for where, image in _values_images(facts.chart_values) if _untagged(image)]


#: Settings in a chart's values that lift a pod out of the `restricted` Pod Security Standard.
PRIVILEGED_VALUES = ("privileged", "allowPrivilegeEscalation", "hostNetwork", "hostPID", "hostIPC")


def _turned_on(value: Any) -> bool:
    """True, or the text "true" (a `set` of `type: string`, a quoted value), which a template renders as true."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _chart_security(facts: PolicyFacts) -> list[str]:
    return [f"{where + '.' if where else ''}{key}: true breaks the restricted Pod Security Standard; set it false"
            for where, key, value in _walk(facts.chart_values) if key in PRIVILEGED_VALUES and _turned_on(value)]


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
    Rule("image-digest", PRODUCTION, "chart", "every image of an add-on chart pinned by digest", _addon_image_digest),
    Rule("rabbitmq-replicas", PRODUCTION, "broker", "3 RabbitMQ replicas", _broker_replicas),
    Rule("rabbitmq-persistence", PRODUCTION, "broker", "persistent RabbitMQ volumes", _broker_persistence),
    Rule("rabbitmq-anti-affinity", PRODUCTION, "broker", "hard anti-affinity between brokers", _broker_anti_affinity),
    Rule("rabbitmq-exposed-tls", ALL_TIERS, "broker", "AMQP beyond the cluster over TLS only", _broker_exposed_over_tls),
    Rule("nodepool-limits", PRODUCTION, "nodepool", "NodePool cpu and memory limits", _pool_limits),
    Rule("nodepool-disruption-budget", PRODUCTION, "nodepool", "a NodePool disruption budget", _pool_budget),
    Rule("nodepool-on-demand", PRODUCTION, "nodepool", "on-demand capacity only", _pool_on_demand),
    Rule("public-ingress", STAGING_AND_UP, "ingress", "only /publish and /health, over HTTPS", _public_ingress),
    # Third-party charts, and the broker's chart, whose values an escape hatch may edit as well
    Rule("image-tag", ALL_TIERS, ("chart", "broker"), "no `latest` or untagged image in a chart's values",
         _chart_image_tag),
    Rule("workload-security", ALL_TIERS, ("chart", "broker"),
         "no privileged or host-namespace setting in a chart's values", _chart_security),
)
RULE_IDS = tuple(dict.fromkeys(rule.id for rule in RULES))


def _own_facts(node: IConstruct) -> tuple[PolicyFacts, ...]:
    """What `node` itself says it delivers: a `Policed` construct's facts, a delivering provider
    resource's (read from its attributes), else nothing."""
    if isinstance(node, Policed):
        facts = node.policy_facts()
        return (facts,) if isinstance(facts, PolicyFacts) else tuple(facts)
    if isinstance(node, TerraformResource):
        return delivered_facts(node)
    return ()


def _answers_for(facts: Iterable[PolicyFacts]) -> set[Subject]:
    """The subjects a `Policed` construct's facts cover (its chart values cover its chart's)."""
    return {subject for f in facts for subject in ((f.subject, "chart") if f.chart_values else (f.subject,))}


def facts_of(node: IConstruct) -> tuple[PolicyFacts, ...]:
    """What `node` delivers that no `Policed` construct above it answers for: a broker answers for
    its chart, a worker for its pods, but a Deployment added under a namespace is still a workload."""
    facts = _own_facts(node)
    if not facts:
        return ()
    answered = set().union(*(_answers_for(_own_facts(s)) for s in node.node.scopes[:-1] if isinstance(s, Policed)))
    return tuple(f for f in facts if f.subject not in answered)


@jsii.implements(IAspect)
class _GuardrailAspect:
    def __init__(self, guardrails: Guardrails) -> None:
        self._guardrails = guardrails

    def visit(self, node: IConstruct) -> None:
        facts = facts_of(node)
        if facts:
            self._guardrails.evaluate(node.node.path, *facts)


@jsii.implements(IValidation)
class _Violations:
    def __init__(self, guardrails: Guardrails, stack: TerraformStack) -> None:
        self._guardrails = guardrails
        self._stack = stack

    def validate(self) -> list[str]:
        self._guardrails.check_waivers({node.node.path for node in self._stack.node.find_all()})
        return [f"guardrail violation: {finding}" for finding in self._guardrails.violations]


@dataclass
class Guardrails:
    """The guardrails of one stack: its tier, rules, waivers and wording, and what the last synth found."""

    stack_name: str
    tier: Tier = Tier.PRODUCTION
    waivers: tuple[Waiver, ...] = ()
    rules: tuple[Rule, ...] = RULES
    wording: Wording = PROPS
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
        stack.node.add_validation(_Violations(guardrails, stack))
        return guardrails

    @staticmethod
    def configure(
        scope: Construct,
        tier: Tier,
        waivers: Sequence[Waiver | Mapping[str, Any]] = (),
        *,
        rules: Sequence[Rule] = (),
        wording: Wording | None = None,
    ) -> Guardrails:
        """Set the tier and waivers of `scope`'s stack, add a team's own `rules` to Burrow's, and
        (for an application with its own files) the `wording` of refusals. A waiver of an unknown
        rule, or for a path outside the stack, is an error; the waivers go into the stack's JSON
        (`//.burrow_guardrail_waivers`) for its reviewers."""
        guardrails = Guardrails.of(scope)
        stack = TerraformStack.of(scope)
        waivers = tuple(props_for(f"{guardrails.stack_name}: waivers[{index}]", Waiver, waiver)
                        for index, waiver in enumerate(waivers))
        guardrails.rules = (*guardrails.rules, *(rule for rule in rules if rule not in guardrails.rules))
        known = tuple(dict.fromkeys(rule.id for rule in guardrails.rules))
        unknown = sorted({w.rule for w in waivers} - set(known))
        if unknown:
            raise PropsError(guardrails.stack_name, "waivers", unknown, f"known rules: {', '.join(known)}")
        outside = [w.path for w in waivers if not w.path.startswith(f"{stack.node.path}/")]
        if outside:
            raise PropsError(guardrails.stack_name, "waivers", outside,
                             f"a waiver names one construct of this stack, as a refusal prints it: "
                             f"{stack.node.path}/<construct id>[/...]")
        guardrails.tier = tier
        guardrails.waivers = tuple(waivers)
        guardrails.wording = wording or guardrails.wording
        if waivers:
            # Reviewers see every waiver, with its reason, in the synthesized stack and its diff.
            stack.add_override("//.burrow_guardrail_waivers", [w.model_dump() for w in waivers])
        return guardrails

    def evaluate(self, path: str, *facts: PolicyFacts) -> None:
        """Check what the construct at `path` delivers against the rules of this stack's tier."""
        if path in self._seen:  # aspects may visit a node more than once
            return
        self._seen.add(path)
        for delivered in facts:
            worded = replace(delivered, settings={**delivered.settings, **self.wording.settings.get(delivered.subject, {})})
            for rule in self.rules:
                if rule.applies(worded, self.tier):
                    for message in rule.check(worded):
                        self._record(Finding(self.stack_name, path, rule.id, message))

    def _record(self, finding: Finding) -> None:
        waiver = next((w for w in self.waivers if w.covers(finding)), None)
        if waiver is None:
            self.violations.append(finding)
        else:
            self.waived.append((finding, waiver.reason))

    def check_waivers(self, paths: set[str]) -> None:
        """A waiver whose path names no construct of the stack is a violation (a typo waives nothing)."""
        for waiver in self.waivers:
            finding = Finding(self.stack_name, waiver.path, "waiver",
                              f"no construct at this path; waive {waiver.rule} on a path a refusal names")
            if waiver.path not in paths and finding not in self.violations:
                self.violations.append(finding)


def guardrails_of(stacks: Iterable[TerraformStack]) -> list[Guardrails]:
    return [g for g in (getattr(stack, "_burrow_guardrails", None) for stack in stacks) if g is not None]


def guardrail_report(violations: Sequence[Finding], advice: Sequence[str] = (PROPS.advice,)) -> str:
    """What a refused synth prints: one line per violation, then how to fix or waive."""
    lines = "".join(f"  {finding}\n" for finding in violations)
    return f"synth refused by guardrails:\n{lines}" + "\n".join(dict.fromkeys(advice))


def refusal(stacks: Iterable[TerraformStack]) -> str | None:
    """The report of the stacks' violations, each stack in its own wording; None when none."""
    refused = [g for g in guardrails_of(stacks) if g.violations]
    if not refused:
        return None
    return guardrail_report([f for g in refused for f in g.violations], [g.wording.advice for g in refused])


def waiver_report(stacks: Iterable[TerraformStack]) -> list[str]:
    """One line per finding a waiver let through, with its reason (printed at every synth)."""
    return [f"WAIVED {finding} -- reason: {reason}" for g in guardrails_of(stacks) for finding, reason in g.waived]


def violations_in(stacks: Iterable[TerraformStack]) -> list[Finding]:
    return [finding for guardrails in guardrails_of(stacks) for finding in guardrails.violations]
