"""The small interface between Burrow's policy and what it polices.

A construct that deploys something implements `Policed`: at synth, after every escape-hatch
edit, it says what it delivers (its final Kubernetes objects, its rendered chart values). The
guardrails read only these facts, never the construct classes, so policy and constructs do not
import each other, and another team's construct is policed by implementing one method. What no
`Policed` construct answers for (a raw `helm_release` or `kubernetes_manifest` a stack adds
itself, a third-party chart) is read from the provider resource itself (`burrow.policy.delivered`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from burrow.k8s.pod_security import pod_specs

Subject = Literal["workload", "broker", "namespace", "nodepool", "ingress", "chart"]


@dataclass(frozen=True)
class PolicyFacts:
    """What one construct delivers, as it will reach the cluster."""

    #: Which rules apply: "workload" (objects that run pods), "broker" (a RabbitMQ chart),
    #: "namespace", "nodepool" (a Karpenter NodePool), "ingress" (a way in from outside the
    #: cluster), "chart" (the values of a chart Burrow did not write, rendered by Helm).
    subject: Subject
    #: The Kubernetes objects the construct delivers, in native shape.
    objects: tuple[Mapping[str, Any], ...] = ()
    #: The chart values its release renders with (every values document merged in order).
    chart_values: Mapping[str, Any] = field(default_factory=dict)
    #: The chart a helm_release installs and the release's name (a `chart` subject): the rules look
    #: the chart's pin up (`burrow.pins`), e.g. the images production pins by digest.
    chart: str = ""
    release: str = ""
    #: How the stack's author sets what a rule asks for, by the prop's name (`anti_affinity`);
    #: a name not listed is the prop itself. The guardrails fill it in from the stack's wording.
    settings: Mapping[str, str] = field(default_factory=dict)

    def setting(self, prop: str) -> str:
        """The name a refusal gives the prop `prop`: the prop itself, or the stack's own word for it
        (an environment file's key when the stack was built from one)."""
        return self.settings.get(prop, prop)


@runtime_checkable
class Policed(Protocol):
    """A construct the guardrails check; `policy_facts` is called at synth. It answers for every
    resource under it, so the guardrails do not read those resources again."""

    def policy_facts(self) -> PolicyFacts | Iterable[PolicyFacts]: ...


def object_facts(objects: Iterable[Mapping[str, Any]]) -> tuple[PolicyFacts, ...]:
    """Facts for plain Kubernetes objects, by what they are: the objects that run pods (with what
    goes with them: autoscalers, PodDisruptionBudgets, NetworkPolicies) as a workload, Ingresses
    as ingress, NodePools as a node pool. Objects of no subject (a ConfigMap) need no rule."""
    objects = tuple(objects)
    kinds = {obj.get("kind") for obj in objects}
    found = []
    if any(next(pod_specs(obj), None) is not None for obj in objects):
        found.append(PolicyFacts("workload", objects))
    if "Ingress" in kinds:
        found.append(PolicyFacts("ingress", tuple(obj for obj in objects if obj.get("kind") == "Ingress")))
    if "NodePool" in kinds:
        found.append(PolicyFacts("nodepool", tuple(obj for obj in objects if obj.get("kind") == "NodePool")))
    return tuple(found)
