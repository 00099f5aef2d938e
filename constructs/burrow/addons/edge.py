"""The public way in, cluster side (`ingress.enabled`): the AWS Load Balancer Controller (Ingress
to ALB, LoadBalancer Service to NLB) and external-dns (each region's own names in the
environment's zone). Both authenticate with the IRSA roles of `burrow.cluster.edge`."""

from __future__ import annotations

from collections.abc import Mapping

from burrow.addons import kinds as k
from burrow.addons.base import HelmAddOn
from burrow.addons.monitoring import MONITORING
from burrow.pins import AWS_LOAD_BALANCER_CONTROLLER, EXTERNAL_DNS
from burrow.spi import EdgeAccess

LOAD_BALANCER_KINDS = k.ChartKinds(
    chart="aws-load-balancer-controller",
    kinds=(k.DEPLOYMENT, k.PDB, *k.CLUSTER_RBAC, *k.NAMESPACE_RBAC, *k.WEBHOOKS, *k.core("Secret", "Service", "ServiceAccount"),
           ("networking.k8s.io/v1", "IngressClass"), ("elbv2.k8s.aws/v1beta1", "IngressClassParams")),
    when={"serviceMonitor.enabled": (k.SERVICE_MONITOR,)},
    crds=(*k.group_kinds("elbv2.k8s.aws", "ALBTargetControlConfig", "IngressClassParams", "TargetGroupBinding"),
          ("aga.k8s.aws", "GlobalAccelerator"),
          *k.group_kinds("gateway.k8s.aws", "ListenerRuleConfiguration", "LoadBalancerConfiguration",
                       "TargetGroupConfiguration")),
)
DNS_KINDS = k.ChartKinds(
    chart="external-dns",
    kinds=(k.DEPLOYMENT, *k.CLUSTER_RBAC, *k.core("Service", "ServiceAccount")),
    when={"serviceMonitor.enabled": (k.SERVICE_MONITOR,)},
    crds=(("externaldns.k8s.io", "DNSEndpoint"),),
)
INGRESS_CLASS = "alb"
#: The annotation external-dns requires on a Service or Ingress before it reads it.
DNS_OPT_IN = "burrow.dev/external-dns"
SMALL = {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}


def irsa_account(name: str, role_arn: str) -> dict:
    return {"create": True, "name": name, "annotations": {"eks.amazonaws.com/role-arn": role_arn}}


def ingress_class_params(access: EdgeAccess, namespace: str) -> dict:
    """What every Ingress of the `alb` class gets whatever it asks for: only Ingresses in the app
    namespace are served (the controller refuses the others), internet-facing, with the region's
    certificate."""
    spec: dict = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                  "scheme": "internet-facing"}
    if access.certificate_arn:
        spec["certificateArn"] = [access.certificate_arn]
    return {"create": True, "name": INGRESS_CLASS, "spec": spec}


def load_balancer_controller(access: EdgeAccess, monitoring: bool, namespace: str,
                             digests: Mapping[str, str] | None = None) -> HelmAddOn:
    """The controller, two replicas, with WAF and Shield off (its role may not use them) and its
    Service webhook off, so it takes only Services that ask for it (`loadBalancerClass`). Its one
    IngressClass (`alb`) serves the app `namespace` only (`ingress_class_params`), and the old
    `kubernetes.io/ingress.class` annotation, which would bypass the class's parameters, is off."""
    return HelmAddOn(
        name="aws-load-balancer-controller",
        repository=AWS_LOAD_BALANCER_CONTROLLER.repository,
        chart="aws-load-balancer-controller",
        version=AWS_LOAD_BALANCER_CONTROLLER.version,
        namespace="kube-system",
        values={
            "clusterName": access.cluster_name,
            "region": access.region,
            "vpcId": access.vpc_id,
            "replicaCount": 2,
            "serviceAccount": irsa_account("aws-load-balancer-controller", access.load_balancer_role_arn),
            "enableShield": False,
            "enableWaf": False,
            "enableWafv2": False,
            "enableServiceMutatorWebhook": False,
            "ingressClass": INGRESS_CLASS,
            "createIngressClassResource": True,
            "ingressClassParams": ingress_class_params(access, namespace),
            "disableIngressClassAnnotation": True,
            "podDisruptionBudget": {"maxUnavailable": 1},
            "resources": SMALL,
            "serviceMonitor": {"enabled": monitoring},
        },
        after=(MONITORING,) if monitoring else (),  # its ServiceMonitor needs the CRD
        digests=digests or {},
    )


def external_dns(access: EdgeAccess, monitoring: bool, digests: Mapping[str, str] | None = None) -> HelmAddOn:
    """external-dns for the environment's zone only, owning what this cluster created (TXT
    registry, owner id = the cluster's name), from annotations only: an Ingress's rule and TLS
    hosts are ignored, so the latency-routed public name stays the global stack's. It reads only the
Services and Ingresses annotated `DNS_OPT_IN` (Burrow's own), so no other namespace's object can
name itself in the zone."""
    return HelmAddOn(
        name="external-dns",
        repository=EXTERNAL_DNS.repository,
        chart="external-dns",
        version=EXTERNAL_DNS.version,
        namespace="external-dns",
        values={
            "provider": {"name": "aws"},
            "env": [{"name": "AWS_DEFAULT_REGION", "value": access.region}],
            "serviceAccount": irsa_account("external-dns", access.dns_role_arn),
            "sources": ["service", "ingress"],
            "policy": "sync",
            "registry": "txt",
            "txtOwnerId": access.cluster_name,
            "domainFilters": [access.zone_name],
            "annotationFilter": f"{DNS_OPT_IN}=true",
            "extraArgs": [f"--zone-id-filter={access.zone_id}", "--aws-zone-type=public",
                          "--ignore-ingress-rules-spec", "--ignore-ingress-tls-spec"],
            "resources": SMALL,
            "serviceMonitor": {"enabled": monitoring},
        },
        after=(MONITORING,) if monitoring else (),  # its ServiceMonitor needs the CRD
        digests=digests or {},
    )

