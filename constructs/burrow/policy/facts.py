"""The small interface between Burrow's policy and what it polices.

A construct that deploys something implements `Policed`: at synth, after every escape-hatch
edit, it says what it delivers (its final Kubernetes objects, its rendered chart values). The
guardrails read only these facts, never the construct classes, so policy and constructs do not
import each other, and another team's construct is policed by implementing one method.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Subject = Literal["workload", "broker", "namespace", "nodepool", "ingress"]


@dataclass(frozen=True)
class PolicyFacts:
    """What one construct delivers, as it will reach the cluster."""

    #: Which rules apply: "workload" (pods of a service), "broker" (a RabbitMQ chart), "namespace",
    #: "nodepool" (a Karpenter NodePool), "ingress" (a way in from outside the cluster).
    subject: Subject
    #: The Kubernetes objects the construct delivers, in native shape.
    objects: tuple[Mapping[str, Any], ...] = ()
    #: The chart values its release renders with (every values document merged in order).
    chart_values: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Policed(Protocol):
    """A construct the guardrails check; `policy_facts` is called at synth."""

    def policy_facts(self) -> PolicyFacts: ...
