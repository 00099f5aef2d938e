"""The producer's way in from outside (`ingress.enabled`): one Ingress served by the AWS Load
Balancer Controller as an internet-facing ALB of the region.

- Only `POST /publish` and `GET /health` are routed (exact paths); anything else gets the ALB's
  404, so `/metrics` and `/ready` stay inside the cluster. The consumer has no Ingress.
- With TLS: HTTPS on 443 with the region's ACM certificate (the controller finds it by host
  name), HTTP on 80 answers only with a redirect to HTTPS, TLS 1.2+ policy.
- The ALB reaches the pods directly (IP targets), checks them on the producer's readiness path
  (`/ready` for Burrow's), and admits only `allowed_cidrs`.
- external-dns writes `<region>.<host>` (and only that name: rule and TLS hosts are ignored by its
  configuration) as an alias to the ALB; `<host>` itself is the global stack's latency record.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from burrow.addons.edge import DNS_OPT_IN, INGRESS_CLASS
from burrow.app.namespace import AppNamespace
from burrow.app.worker import QueueWorker
from burrow.errors import PropsError
from burrow.k8s import objects as k8s
from burrow.k8s.objects import MANAGED_BY
from burrow.k8s.release import RELEASE_NAME, DeliversObjects, KubernetesObjects
from burrow.names import Ipv4Cidr
from burrow.policy.facts import PolicyFacts
from burrow.policy.guardrails import PUBLIC_PATHS as GUARDED_PATHS
from burrow.policy.guardrails import Guardrails
from burrow.props import Props, child_path, props_for, reference
from burrow.spi import EdgeAccess
from constructs import Construct

PUBLIC_PATHS = GUARDED_PATHS
#: The ALB's TLS policies that allow TLS 1.2 and 1.3 only.
SslPolicy = Literal["ELBSecurityPolicy-TLS13-1-2-2021-06", "ELBSecurityPolicy-TLS13-1-3-2021-06"]


class PublicIngressProps(Props):
    """Props of `PublicIngress` (data only: the namespace and the producer are the constructor's
    keyword arguments). Required: `edge`, `load_balancer_cidrs`."""

    #: The region's way in (`PublicEntry.access`): the names the Ingress answers to. An `EdgeAccess`
    #: or a mapping of its fields.
    edge: EdgeAccess
    #: The ranges the load balancer's addresses come from (the region's public subnets): the only
    #: sources the producer's NetworkPolicy admits to its HTTP port.
    load_balancer_cidrs: tuple[Ipv4Cidr, ...] = Field(min_length=1)
    #: HTTPS on 443 with the region's ACM certificate, HTTP answering only with a redirect to it;
    #: off, HTTP only (refused by the guardrails in staging and production). default: True
    tls: bool = True
    #: The ALB's TLS policy. default: ELBSecurityPolicy-TLS13-1-2-2021-06 (TLS 1.2 and 1.3)
    ssl_policy: SslPolicy = "ELBSecurityPolicy-TLS13-1-2-2021-06"
    #: The clients the ALB admits. default: anyone (0.0.0.0/0)
    allowed_cidrs: tuple[Ipv4Cidr, ...] = Field(default=("0.0.0.0/0",), min_length=1)
    #: The name of the object release carrying the Ingress and its policy. default: burrow-ingress
    release_name: str = Field(default="burrow-ingress", pattern=RELEASE_NAME)


def producer_ingress(props: PublicIngressProps, namespace: str, producer: QueueWorker) -> k8s.K8sObject:
    """The producer's Ingress: only the public paths, exactly, for `host` and `<region>.<host>`."""
    edge = props.edge
    listen = [{"HTTP": 80}, {"HTTPS": 443}] if props.tls else [{"HTTP": 80}]
    annotations = {
        "alb.ingress.kubernetes.io/scheme": "internet-facing",
        "alb.ingress.kubernetes.io/target-type": "ip",
        "alb.ingress.kubernetes.io/listen-ports": json.dumps(listen),
        "alb.ingress.kubernetes.io/healthcheck-path": producer.props.readiness_path,
        "alb.ingress.kubernetes.io/inbound-cidrs": ",".join(props.allowed_cidrs),
        "alb.ingress.kubernetes.io/load-balancer-attributes": "routing.http.drop_invalid_header_fields.enabled=true",
        "external-dns.alpha.kubernetes.io/hostname": edge.region_host,
        DNS_OPT_IN: "true",
    }
    spec: dict[str, Any] = {"ingressClassName": INGRESS_CLASS}
    if props.tls:
        annotations["alb.ingress.kubernetes.io/ssl-redirect"] = "443"
        annotations["alb.ingress.kubernetes.io/ssl-policy"] = props.ssl_policy
        spec["tls"] = [{"hosts": [edge.host, edge.region_host]}]
    spec["rules"] = [
        {"host": host, "http": {"paths": [
            {"path": path, "pathType": "Exact",
             "backend": {"service": {"name": producer.name, "port": {"number": producer.props.port}}}}
            for path in PUBLIC_PATHS
        ]}}
        for host in (edge.host, edge.region_host)
    ]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {**k8s.metadata(producer.name, namespace, MANAGED_BY), "annotations": annotations},
        "spec": spec,
    }


def load_balancer_policy(props: PublicIngressProps, namespace: str, producer: QueueWorker) -> k8s.K8sObject:
    """Lets the internet-facing ALB (its addresses are in the region's public subnets, where no pod
    runs) reach the producer's HTTP port."""
    return k8s.network_policy(
        f"{producer.name}-from-load-balancer", namespace, k8s.selector_for(producer.labels),
        ingress=[{"from": [{"ipBlock": {"cidr": cidr}} for cidr in props.load_balancer_cidrs],
                  "ports": k8s.tcp_ports("http")}])


class PublicIngress(DeliversObjects, Construct):
    """A producer's public Ingress, served by the AWS Load Balancer Controller as an internet-facing
    ALB, and the policy admitting that load balancer, as one object release.

    `props` is a `PublicIngressProps` or a mapping of its fields (validated here, so a mistake names
    this construct's path). `namespace` is where the Ingress goes (its release waits for it);
    `producer` is the worker it routes to (its Service, HTTP port and readiness path), running in
    `namespace`. Policed as an `ingress` (staging and production: only the public paths, exactly,
    over HTTPS). Escape hatches: `objects` (native shape; edits before synth are delivered and
    checked), `delivery`.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        props: PublicIngressProps | Mapping[str, Any],
        *,
        namespace: AppNamespace,
        producer: QueueWorker,
    ) -> None:
        path = child_path(scope, id)
        namespace = reference(path, "namespace", namespace, AppNamespace)
        producer = reference(path, "producer", producer, QueueWorker)
        props = props_for(path, PublicIngressProps, props)
        runs_in = producer.delivery.namespace if producer.delivery else None
        if runs_in != namespace.name:
            raise PropsError(path, "namespace", namespace.name, f"the producer {producer.name!r} runs in namespace "
                             f"{runs_in!r}: an Ingress routes only to a Service of its own namespace")
        super().__init__(scope, id)
        self.props = props
        self.namespace = namespace
        self.producer = producer
        Guardrails.of(self)
        self.delivery = KubernetesObjects(
            self,
            "objects",
            {"release_name": props.release_name, "namespace": namespace.name,
             "objects": [producer_ingress(props, namespace.name, producer),
                         load_balancer_policy(props, namespace.name, producer)]},
            depends_on=[namespace.resource],
        )

    def policy_facts(self) -> PolicyFacts:
        return PolicyFacts("ingress", tuple(self.objects))
