"""The producer's way in from outside (`ingress.enabled`): one Ingress served by the AWS Load
Balancer Controller as an internet-facing ALB of the region.

- Only `POST /publish` and `GET /health` are routed (exact paths); anything else gets the ALB's
  404, so `/metrics` and `/ready` stay inside the cluster. The consumer has no Ingress.
- With TLS: HTTPS on 443 with the region's ACM certificate (the controller finds it by host
  name), HTTP on 80 answers only with a redirect to HTTPS, TLS 1.2+ policy.
- The ALB reaches the pods directly (IP targets), checks them on `/ready`, and admits only
  `ingress.allowed_cidrs`.
- external-dns writes `<region>.<host>` (and only that name: rule and TLS hosts are ignored by its
  configuration) as an alias to the ALB; `<host>` itself is the global stack's latency record.
"""

from __future__ import annotations

import json
from typing import Any

from cdktf import ITerraformDependable

from burrow.addons.edge import DNS_OPT_IN, INGRESS_CLASS
from burrow.app.settings import IngressConfig
from burrow.k8s import objects as k8s
from burrow.k8s.objects import MANAGED_BY
from burrow.k8s.release import DeliversObjects, KubernetesObjects
from burrow.policy.facts import PolicyFacts
from burrow.policy.guardrails import PUBLIC_PATHS as GUARDED_PATHS
from burrow.policy.guardrails import Guardrails
from burrow.spi import EdgeAccess
from constructs import Construct

PUBLIC_PATHS = GUARDED_PATHS
READINESS_PATH = "/ready"


def producer_ingress(name: str, namespace: str, service: str, port: int, edge: EdgeAccess,
                     config: IngressConfig) -> k8s.K8sObject:
    listen = [{"HTTP": 80}, {"HTTPS": 443}] if config.tls else [{"HTTP": 80}]
    annotations = {
        "alb.ingress.kubernetes.io/scheme": "internet-facing",
        "alb.ingress.kubernetes.io/target-type": "ip",
        "alb.ingress.kubernetes.io/listen-ports": json.dumps(listen),
        "alb.ingress.kubernetes.io/healthcheck-path": READINESS_PATH,
        "alb.ingress.kubernetes.io/inbound-cidrs": ",".join(config.allowed_cidrs),
        "alb.ingress.kubernetes.io/load-balancer-attributes": "routing.http.drop_invalid_header_fields.enabled=true",
        "external-dns.alpha.kubernetes.io/hostname": edge.region_host,
        DNS_OPT_IN: "true",
    }
    spec: dict[str, Any] = {"ingressClassName": INGRESS_CLASS}
    if config.tls:
        annotations["alb.ingress.kubernetes.io/ssl-redirect"] = "443"
        annotations["alb.ingress.kubernetes.io/ssl-policy"] = config.ssl_policy
        spec["tls"] = [{"hosts": [edge.host, edge.region_host]}]
    spec["rules"] = [
        {"host": host, "http": {"paths": [
            {"path": path, "pathType": "Exact", "backend": {"service": {"name": service, "port": {"number": port}}}}
            for path in PUBLIC_PATHS
        ]}}
        for host in (edge.host, edge.region_host)
    ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {**k8s.metadata(name, namespace, MANAGED_BY), "annotations": annotations},
        "spec": spec,
    }


def load_balancer_policy(name: str, namespace: str, pod_labels: dict[str, str], subnet_cidrs: list[str],
                         port: int | str) -> k8s.K8sObject:
    """Lets the internet-facing ALB (its addresses are in the region's public subnets, where no pod
    runs) reach the producer's HTTP port."""
    return k8s.network_policy(name, namespace, pod_labels, ingress=[
        {"from": [{"ipBlock": {"cidr": cidr}} for cidr in subnet_cidrs], "ports": k8s.tcp_ports(port)}])


class PublicIngress(DeliversObjects, Construct):
    """The producer's public Ingress and the policy admitting its load balancer, as one object release.

    Policed as an `ingress` (staging and production: only the public paths, exactly, over HTTPS).
    Escape hatches: `objects` (native shape; edits before synth are delivered and checked), `delivery`.
    """

    def __init__(self, scope: Construct, id: str, *, namespace: str, objects: list[k8s.K8sObject],
                 depends_on: list[ITerraformDependable]) -> None:
        super().__init__(scope, id)
        Guardrails.of(self)
        self.delivery = KubernetesObjects(
            self,
            "objects",
            {"release_name": "burrow-ingress", "namespace": namespace, "objects": objects},
            depends_on=depends_on,
        )

    def policy_facts(self) -> PolicyFacts:
        return PolicyFacts("ingress", tuple(self.objects))
