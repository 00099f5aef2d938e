"""`AppNamespace`: the environment's namespace, with Pod Security Admission enforcing `restricted`."""

from __future__ import annotations

from collections.abc import Mapping

from cdktf_cdktf_provider_kubernetes.namespace_v1 import NamespaceV1, NamespaceV1Metadata

from burrow.config.schema import NamespaceQuota
from burrow.k8s import objects as k8s
from burrow.k8s.objects import DNS_PORTS, MANAGED_BY
from burrow.k8s.pod_security import admission_labels
from burrow.k8s.release import KubernetesObjects
from burrow.policy.facts import PolicyFacts
from burrow.policy.guardrails import Guardrails
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


class AppNamespace(Construct):
    """A namespace whose pods must meet the `restricted` Pod Security Standard and, by default,
    may talk to nothing but DNS until a NetworkPolicy allows more (each Burrow construct brings
    the policies it needs).

    `labels` are added to the namespace's own (a preview's PR number, commit and expiry); `quota`
    adds a ResourceQuota and a LimitRange.

    Escape hatches: `resource` (the `kubernetes_namespace_v1`), `policies` (the object release
    with the default-deny and DNS policies and the quota; None when there is none of them).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        name: str,
        default_deny: bool = True,
        labels: Mapping[str, str] | None = None,
        quota: NamespaceQuota | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.name = name
        Guardrails.of(self)
        labels = {
            **(labels or {}),
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
        if default_deny:
            objects += [
                k8s.network_policy("default-deny", name, {}, ingress=[], egress=[]),
                k8s.network_policy(
                    "allow-dns", name, {}, egress=[{"to": [k8s.peer_namespace("kube-system")], "ports": DNS_PORTS}]
                ),
            ]
        if quota is not None:
            objects += quota_objects(name, quota)
        self.policies = None
        if objects:
            self.policies = KubernetesObjects(
                self, "policies", release_name=f"{name}-network-defaults", namespace=name, objects=objects,
                depends_on=[self.resource],
            )

    def policy_facts(self) -> PolicyFacts:
        """What the guardrails check: the namespace's own policies, as delivered."""
        return PolicyFacts("namespace", self.policies.objects if self.policies else ())
