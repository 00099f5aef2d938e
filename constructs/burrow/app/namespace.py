"""`AppNamespace`: the environment's namespace, with Pod Security Admission enforcing `restricted`."""

from __future__ import annotations

from cdktf_cdktf_provider_kubernetes.namespace_v1 import NamespaceV1, NamespaceV1Metadata

from burrow.k8s import objects as k8s
from burrow.k8s.objects import MANAGED_BY
from burrow.k8s.release import KubernetesObjects
from burrow.policy.facts import PolicyFacts
from burrow.policy.guardrails import Guardrails
from burrow.spi import ClusterInfo
from constructs import Construct

PSA_LEVEL = "restricted"


DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]


class AppNamespace(Construct):
    """A namespace whose pods must meet the `restricted` Pod Security Standard and, by default,
    may talk to nothing but DNS until a NetworkPolicy allows more (each Burrow construct brings
    the policies it needs).

    Escape hatches: `resource` (the `kubernetes_namespace_v1`), `policies` (the object release
    with the default-deny and DNS policies; None with `default_deny=False`).
    """

    def __init__(self, scope: Construct, id: str, *, name: str, default_deny: bool = True) -> None:
        super().__init__(scope, id)
        self.name = name
        Guardrails.of(self)
        labels = {
            **MANAGED_BY,
            **{f"pod-security.kubernetes.io/{mode}": PSA_LEVEL for mode in ("enforce", "audit", "warn")},
        }
        self.resource = NamespaceV1(
            self,
            "namespace",
            metadata=NamespaceV1Metadata(name=name, labels=labels),
            provider=ClusterInfo.providers_of(self).kubernetes,
        )
        self.policies = None
        if default_deny:
            self.policies = KubernetesObjects(
                self,
                "policies",
                release_name=f"{name}-network-defaults",
                namespace=name,
                objects=[
                    k8s.network_policy("default-deny", name, {}, ingress=[], egress=[]),
                    k8s.network_policy(
                        "allow-dns",
                        name,
                        {},
                        egress=[{"to": [k8s.peer_namespace("kube-system")], "ports": DNS_PORTS}],
                    ),
                ],
                depends_on=[self.resource],
            )

    def policy_facts(self) -> PolicyFacts:
        """What the guardrails check: the namespace's own policies, as delivered."""
        return PolicyFacts("namespace", self.policies.objects if self.policies else ())
