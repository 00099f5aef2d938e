"""`AppNamespace`: the environment's namespace, with Pod Security Admission enforcing `restricted`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cdktf_cdktf_provider_kubernetes.namespace_v1 import NamespaceV1, NamespaceV1Metadata
from pydantic import Field, field_validator

from burrow.app.settings import NamespaceQuota
from burrow.k8s import objects as k8s
from burrow.k8s.objects import DNS_PORTS, MANAGED_BY
from burrow.k8s.pod_security import admission_labels
from burrow.k8s.release import MAX_RELEASE_NAME, NAMESPACE_NAME, DeliversObjects, KubernetesObjects
from burrow.policy.facts import PolicyFacts
from burrow.policy.guardrails import Guardrails
from burrow.props import Props, child_path, props_for
from burrow.spi import ClusterInfo
from constructs import Construct


def quota_objects(namespace: str, quota: NamespaceQuota) -> list[dict]:
    """A ResourceQuota over the namespace and a LimitRange that defaults every container."""
    return [
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": k8s.metadata("quota", namespace, MANAGED_BY),
            "spec": {"hard": {
                "requests.cpu": quota.requests_cpu,
                "requests.memory": quota.requests_memory,
                "limits.cpu": quota.limits_cpu,
                "limits.memory": quota.limits_memory,
                "pods": str(quota.pods),
                "persistentvolumeclaims": str(quota.persistent_volume_claims),
            }},
        },
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": k8s.metadata("container-defaults", namespace, MANAGED_BY),
            "spec": {"limits": [{
                "type": "Container",
                "defaultRequest": quota.default_request.model_dump(),
                "default": quota.default_limit.model_dump(),
            }]},
        },
    ]


class AppNamespaceProps(Props):
    """Props of `AppNamespace`. Required: `name`."""

    #: The namespace's name: a DNS label (lowercase letters, digits and `-`) of at most 36 characters,
    #: since its object release is `<name>-network-defaults` and Helm allows 53.
    name: str = Field(pattern=NAMESPACE_NAME)
    #: NetworkPolicies that deny all traffic but DNS until a policy allows more. default: True
    default_deny: bool = True
    #: Labels added to the namespace's own (a preview's PR number, commit and expiry). default: none
    labels: dict[str, str] = Field(default_factory=dict)
    #: A ResourceQuota over the namespace and a LimitRange defaulting every container. default: none
    quota: NamespaceQuota | None = None

    @field_validator("name")
    @classmethod
    def _fits_its_release_name(cls, name: str) -> str:
        return fits_its_release_name(name)


def fits_its_release_name(name: str) -> str:
    """`name` if a namespace of that name can have its object release (Helm allows 53 characters)."""
    if len(release_name(name)) > MAX_RELEASE_NAME:
        raise ValueError(f"at most {MAX_RELEASE_NAME - len(release_name(''))} characters: the namespace's "
                         f"object release is {release_name(name)!r}, and Helm allows {MAX_RELEASE_NAME}")
    return name


def release_name(namespace: str) -> str:
    """The name of the release delivering a namespace's own policies and quota."""
    return f"{namespace}-network-defaults"


class AppNamespace(DeliversObjects, Construct):
    """A namespace whose pods must meet the `restricted` Pod Security Standard and, by default,
    may talk to nothing but DNS until a NetworkPolicy allows more (each Burrow construct brings
    the policies it needs).

    `props` is an `AppNamespaceProps` or a mapping of its fields (validated here, so a mistake names
    this construct's path). Escape hatches: `resource` (the `kubernetes_namespace_v1`), `objects`
    (the default-deny and DNS policies and the quota, native shape; edits before synth are delivered
    and checked) and `delivery` (their object release; None when there is none of them).
    """

    def __init__(self, scope: Construct, id: str, props: AppNamespaceProps | Mapping[str, Any]) -> None:
        props = props_for(child_path(scope, id), AppNamespaceProps, props)
        super().__init__(scope, id)
        self.props = props
        name = props.name
        self.name = name
        Guardrails.of(self)
        labels = {
            **props.labels,
            **MANAGED_BY,
            **admission_labels(),
        }
        self.labels = labels
        self.resource = NamespaceV1(
            self,
            "namespace",
            metadata=NamespaceV1Metadata(name=name, labels=labels),
            provider=ClusterInfo.providers_of(self).kubernetes,
        )
        objects = []
        if props.default_deny:
            objects += [
                k8s.network_policy("default-deny", name, {}, ingress=[], egress=[]),
                k8s.network_policy(
                    "allow-dns", name, {}, egress=[{"to": [k8s.peer_namespace("kube-system")], "ports": DNS_PORTS}]
                ),
            ]
        if props.quota is not None:
            objects += quota_objects(name, props.quota)
        self.delivery = None
        if objects:
            self.delivery = KubernetesObjects(
                self,
                "policies",
                {"release_name": release_name(name), "namespace": name, "objects": objects},
                depends_on=[self.resource],
            )

    def policy_facts(self) -> PolicyFacts:
        """What the guardrails check: the namespace's own policies, as delivered."""
        return PolicyFacts("namespace", self.objects)
