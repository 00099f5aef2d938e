"""The public way in, cluster side (`ingress.enabled`): the AWS Load Balancer Controller (Ingress
to ALB, LoadBalancer Service to NLB) and external-dns (each region's own names in the
environment's zone). Both authenticate with the IRSA roles of `burrow.cluster.edge`."""

from __future__ import annotations

from burrow.addons.base import HelmAddOn
from burrow.spi import EdgeAccess

LOAD_BALANCER_CHART_VERSION = "3.5.0"  # AWS Load Balancer Controller v3.5.0
DNS_CHART_VERSION = "1.21.1"  # external-dns 0.21.0
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


def load_balancer_controller(access: EdgeAccess, monitoring: bool, namespace: str) -> HelmAddOn:
    """The controller, two replicas, with WAF and Shield off (its role may not use them) and its
    Service webhook off, so it takes only Services that ask for it (`loadBalancerClass`). Its one
    IngressClass (`alb`) serves the app `namespace` only (`ingress_class_params`), and the old
    `kubernetes.io/ingress.class` annotation, which would bypass the class's parameters, is off."""
    return HelmAddOn(
        name="aws-load-balancer-controller",
        repository="https://aws.github.io/eks-charts",
        chart="aws-load-balancer-controller",
        version=LOAD_BALANCER_CHART_VERSION,
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
        after=("monitoring",),
    )


def external_dns(access: EdgeAccess, monitoring: bool) -> HelmAddOn:
    """external-dns for the environment's zone only, owning what this cluster created (TXT
    registry, owner id = the cluster's name), from annotations only: an Ingress's rule and TLS
    hosts are ignored, so the latency-routed public name stays the global stack's. It reads only the
Services and Ingresses annotated `DNS_OPT_IN` (Burrow's own), so no other namespace's object can
name itself in the zone."""
    return HelmAddOn(
        name="external-dns",
        repository="https://kubernetes-sigs.github.io/external-dns/",
        chart="external-dns",
        version=DNS_CHART_VERSION,
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
        after=("monitoring",),
    )

