"""`PublicEntry`: the AWS side of one region's way in (`ingress.enabled`).

- An ACM certificate for the producer's public name and the region's own name
  (`<region>.<host>`), validated by DNS records in the environment's zone (the public name's
  record, the same in every region, is owned by the primary region alone);
- the IRSA role of the AWS Load Balancer Controller, which turns the producer's Ingress into an
  internet-facing ALB (and the broker's federation Service into an internal NLB). Its policy
  follows the controller's reference policy: writes scoped to load balancers, target groups and
  security groups the controller tagged, ingress rules to security groups of the cluster's VPC
  (the cluster security group is not the controller's); WAF, Shield and Cognito are off;
- the IRSA role of external-dns, which may list records in this zone and change only Burrow's own
  names there (`<region>.<host>`, the broker's name) and their TXT registry records.

The latency-routed public name and the health checks live in the `<env>-global` stack
(`burrow.stacks.global_`); external-dns owns only `<region>.<host>` (and the broker's name),
because only the controller knows the load balancer's address, which changes when it replaces
the load balancer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cdktf import TerraformIterator, TerraformResourceLifecycle, Token
from cdktf_cdktf_provider_aws.acm_certificate import AcmCertificate, AcmCertificateOptions
from cdktf_cdktf_provider_aws.acm_certificate_validation import (
    AcmCertificateValidation,
    AcmCertificateValidationTimeouts,
)
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.route53_record import Route53Record
from pydantic import model_validator

from burrow.cluster.eks import EksCluster, irsa_trust
from burrow.common.network import Network
from burrow.names import Hostname, RegionName, ZoneId, fitted
from burrow.props import Props, child_path, props_for, reference
from burrow.spi import EdgeAccess
from constructs import Construct

LOAD_BALANCER_SERVICE_ACCOUNT = "system:serviceaccount:kube-system:aws-load-balancer-controller"
DNS_SERVICE_ACCOUNT = "system:serviceaccount:external-dns:external-dns"
CLUSTER_TAG = "elbv2.k8s.aws/cluster"
#: How long a cluster stack waits for ACM to issue its certificate. ACM can validate only once the
#: zone answers publicly: a zone that `<env>-global` has just created must first be delegated from its
#: parent to the name servers that stack prints (`name-servers`). The hour runs while the cluster is
#: created; it covers a delegation made as soon as `<env>-global` is applied, and waiting longer would
#: only hold the state lock. On a timeout: delegate, then deploy again (docs/iam.md, "First deploy").
VALIDATION_TIMEOUT = "60m"


def _tagged(key: str) -> dict:
    return {"Null": {f"aws:{key}/{CLUSTER_TAG}": "false"}}


#: What may add or remove tags only on what the controller tagged, and never its cluster tag.
_RETAG_OWN = {"Null": {f"aws:RequestTag/{CLUSTER_TAG}": "true", f"aws:ResourceTag/{CLUSTER_TAG}": "false"}}


def load_balancer_policy(region: str, vpc_id: str) -> dict:
    """What the AWS Load Balancer Controller may do (its reference policy, without WAF, Shield,
    Cognito and IAM server certificates): read everything it reconciles against; create, change
    and delete only what it tagged; open ingress on the security groups of this cluster's VPC.

    The last is the reference's unconditioned `AuthorizeSecurityGroupIngress` narrowed to one VPC:
    the controller must open the EKS cluster security group (and any node security group) to its
    load balancers, and it never tags those. The deliberate differences from the reference are in
    `burrow_tools.iam_narrowings` and docs/iam.md."""
    describe = [
        "ec2:DescribeAccountAttributes", "ec2:DescribeAddresses", "ec2:DescribeAvailabilityZones",
        "ec2:DescribeInternetGateways", "ec2:DescribeVpcs", "ec2:DescribeVpcPeeringConnections",
        "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups", "ec2:DescribeInstances",
        "ec2:DescribeNetworkInterfaces", "ec2:DescribeTags", "ec2:DescribeRouteTables",
        "ec2:GetSecurityGroupsForVpc", "ec2:GetCoipPoolUsage", "ec2:DescribeCoipPools", "ec2:DescribeIpamPools",
        "elasticloadbalancing:DescribeLoadBalancers", "elasticloadbalancing:DescribeLoadBalancerAttributes",
        "elasticloadbalancing:DescribeListeners", "elasticloadbalancing:DescribeListenerCertificates",
        "elasticloadbalancing:DescribeListenerAttributes", "elasticloadbalancing:DescribeSSLPolicies",
        "elasticloadbalancing:DescribeRules", "elasticloadbalancing:DescribeTargetGroups",
        "elasticloadbalancing:DescribeTargetGroupAttributes", "elasticloadbalancing:DescribeTargetHealth",
        "elasticloadbalancing:DescribeTags", "elasticloadbalancing:DescribeTrustStores",
        "elasticloadbalancing:DescribeCapacityReservation",
        "acm:ListCertificates", "acm:DescribeCertificate",
    ]
    owned_lb = [
        "arn:aws:elasticloadbalancing:*:*:targetgroup/*/*",
        "arn:aws:elasticloadbalancing:*:*:loadbalancer/net/*/*",
        "arn:aws:elasticloadbalancing:*:*:loadbalancer/app/*/*",
    ]
    listeners = [
        "arn:aws:elasticloadbalancing:*:*:listener/net/*/*/*", "arn:aws:elasticloadbalancing:*:*:listener/app/*/*/*",
        "arn:aws:elasticloadbalancing:*:*:listener-rule/net/*/*/*",
        "arn:aws:elasticloadbalancing:*:*:listener-rule/app/*/*/*",
    ]
    security_groups = "arn:aws:ec2:*:*:security-group/*"
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "ServiceLinkedRole", "Effect": "Allow", "Action": "iam:CreateServiceLinkedRole", "Resource": "*",
         "Condition": {"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}}},
        {"Sid": "Read", "Effect": "Allow", "Action": describe, "Resource": "*"},
        {"Sid": "IngressInThisVpc", "Effect": "Allow",
         "Action": ["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
         "Resource": f"arn:aws:ec2:{region}:*:security-group/*",
         "Condition": {"ArnLike": {"ec2:Vpc": f"arn:aws:ec2:{region}:*:vpc/{vpc_id}"}}},
        {"Sid": "CreateSecurityGroup", "Effect": "Allow", "Action": "ec2:CreateSecurityGroup", "Resource": "*"},
        {"Sid": "TagNewSecurityGroup", "Effect": "Allow", "Action": "ec2:CreateTags", "Resource": security_groups,
         "Condition": {"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"}, **_tagged("RequestTag")}},
        {"Sid": "RetagOwnSecurityGroups", "Effect": "Allow", "Action": ["ec2:CreateTags", "ec2:DeleteTags"],
         "Resource": security_groups, "Condition": _RETAG_OWN},
        {"Sid": "DeleteOwnSecurityGroups", "Effect": "Allow", "Action": "ec2:DeleteSecurityGroup", "Resource": "*",
         "Condition": _tagged("ResourceTag")},
        {"Sid": "CreateTagged", "Effect": "Allow",
         "Action": ["elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"],
         "Resource": "*", "Condition": _tagged("RequestTag")},
        {"Sid": "Listeners", "Effect": "Allow",
         "Action": ["elasticloadbalancing:CreateListener", "elasticloadbalancing:DeleteListener",
                    "elasticloadbalancing:CreateRule", "elasticloadbalancing:DeleteRule"], "Resource": "*"},
        {"Sid": "RetagOwn", "Effect": "Allow",
         "Action": ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
         "Resource": owned_lb, "Condition": _RETAG_OWN},
        {"Sid": "TagListeners", "Effect": "Allow",
         "Action": ["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"], "Resource": listeners},
        {"Sid": "TagOnCreate", "Effect": "Allow", "Action": "elasticloadbalancing:AddTags", "Resource": owned_lb,
         "Condition": {"StringEquals": {"elasticloadbalancing:CreateAction": ["CreateTargetGroup", "CreateLoadBalancer"]},
                       **_tagged("RequestTag")}},
        {"Sid": "ChangeOwn", "Effect": "Allow",
         "Action": ["elasticloadbalancing:ModifyLoadBalancerAttributes", "elasticloadbalancing:SetIpAddressType",
                    "elasticloadbalancing:SetSecurityGroups", "elasticloadbalancing:SetSubnets",
                    "elasticloadbalancing:DeleteLoadBalancer", "elasticloadbalancing:ModifyTargetGroup",
                    "elasticloadbalancing:ModifyTargetGroupAttributes", "elasticloadbalancing:DeleteTargetGroup",
                    "elasticloadbalancing:ModifyListenerAttributes", "elasticloadbalancing:ModifyCapacityReservation",
                    "elasticloadbalancing:ModifyIpPools"],
         "Resource": "*", "Condition": _tagged("ResourceTag")},
        {"Sid": "Targets", "Effect": "Allow",
         "Action": ["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
         "Resource": "arn:aws:elasticloadbalancing:*:*:targetgroup/*/*"},
        {"Sid": "ListenerSettings", "Effect": "Allow",
         "Action": ["elasticloadbalancing:ModifyListener", "elasticloadbalancing:AddListenerCertificates",
                    "elasticloadbalancing:RemoveListenerCertificates", "elasticloadbalancing:ModifyRule",
                    "elasticloadbalancing:SetRulePriorities"], "Resource": "*"},
    ]}


#: The record types external-dns writes for Burrow's load balancers: alias A (AAAA when dual-stack),
#: CNAME for a target that cannot be an alias, and TXT for its registry.
DNS_RECORD_TYPES = ("A", "AAAA", "CNAME", "TXT")


def registry_names(name: str) -> list[str]:
    """The TXT registry records external-dns 0.21 writes beside `name` (no `--txt-prefix` or
    `--txt-suffix`): the record type, lower-cased, prefixed to the first label (`a-`, `aaaa-`,
    `cname-`, the last for an alias A record)."""
    first, _, rest = name.partition(".")
    return [f"{kind}-{first}.{rest}" for kind in ("a", "aaaa", "cname")]


def dns_policy(zone_id: str, names: list[str]) -> str:
    """external-dns: list the records of the environment's zone only (it is started with
    `--zone-id-filter`, so it reads no other zone's records, and no zone tags), list zones, and
    change only `names` and their registry records, of the types it writes: a Service or Ingress
    elsewhere in the cluster that reaches external-dns cannot repoint any other name of the zone."""
    zone = f"arn:aws:route53:::hostedzone/{zone_id}"
    owned = sorted({n.lower().rstrip(".") for name in names for n in (name, *registry_names(name))})
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "ThisZone", "Effect": "Allow",
         "Action": ["route53:ListResourceRecordSets", "route53:ListTagsForResources"], "Resource": zone},
        {"Sid": "BurrowsNames", "Effect": "Allow", "Action": "route53:ChangeResourceRecordSets", "Resource": zone,
         "Condition": {"ForAllValues:StringEquals": {
             "route53:ChangeResourceRecordSetsNormalizedRecordNames": owned,
             "route53:ChangeResourceRecordSetsRecordTypes": list(DNS_RECORD_TYPES)}}},
        {"Sid": "ListZones", "Effect": "Allow", "Action": "route53:ListHostedZones", "Resource": "*"},
    ]})


class PublicEntryProps(Props):
    """Props of `PublicEntry` (data only: the cluster and the network are the constructor's keyword
    arguments). Required: `region`, `zone_id`, `zone_name`, `host`."""

    #: The region (`eu-west-1`): the certificate also names `<region>.<host>`, this region's own name.
    region: RegionName
    #: The Route 53 zone holding `host` (usually the `<env>-global` stack's zone: a reference).
    zone_id: ZoneId
    #: The zone's name (`example.com`).
    zone_name: Hostname
    #: The public name clients use (`events.example.com`); it lies inside `zone_name`.
    host: Hostname
    #: An ACM certificate for `host` and `<region>.<host>`, validated by DNS. default: True
    tls: bool = True
    #: This region creates the DNS validation record of `host` itself. Every region's certificate
    #: names `host`, and ACM asks for the same record for the same name in every region of an
    #: account: one region (the primary, deployed first and destroyed last) owns it, so destroying
    #: another region leaves the renewal record in place. default: True
    owns_shared_validation: bool = True
    #: The names besides `<region>.<host>` external-dns may write (the broker's). default: none
    dns_names: tuple[Hostname, ...] = ()

    @model_validator(mode="after")
    def _names_in_the_zone(self) -> PublicEntryProps:
        outside = [name for name in (self.host, *self.dns_names) if not name.endswith(f".{self.zone_name}")]
        if outside:
            raise ValueError(f"{', '.join(outside)} not inside zone_name {self.zone_name!r}: ACM validates, and "
                             f"external-dns writes, records of that zone only (names end in '.{self.zone_name}')")
        return self


class PublicEntry(Construct):
    """The certificate and the controllers' roles of one region's public producer.

    `props` is a `PublicEntryProps` or a mapping of its fields (validated here, so a mistake names
    this construct's path). `cluster` is the region's cluster (the controllers' roles trust its OIDC
    provider and carry its name); `network` is the region's network (the load balancer controller
    may open ingress only on its VPC's security groups). Escape hatches: `certificate` (None without
    TLS), `load_balancer_role`, `dns_role`; `access` is what the add-ons stack needs.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        props: PublicEntryProps | Mapping[str, Any],
        *,
        cluster: EksCluster,
        network: Network,
    ) -> None:
        path = child_path(scope, id)
        cluster = reference(path, "cluster", cluster, EksCluster)
        network = reference(path, "network", network, Network)
        props = props_for(path, PublicEntryProps, props)
        super().__init__(scope, id)
        self.props = props
        self.cluster, self.network = cluster, network
        region, zone_id, host = props.region, props.zone_id, props.host
        vpc_id = network.vpc.id
        name = cluster.name
        region_host = f"{region}.{host}"
        self.certificate = None
        if props.tls:
            self.certificate = AcmCertificate(
                self, "certificate", domain_name=host, subject_alternative_names=[region_host],
                validation_method="DNS", lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
                options=AcmCertificateOptions(certificate_transparency_logging_preference="ENABLED"),
                tags={"Name": f"{name}-producer"},
            )
            options = TerraformIterator.from_complex_list(self.certificate.domain_validation_options, "domain_name")
            records = Route53Record(
                self, "validation", for_each=options, zone_id=zone_id, allow_overwrite=True, ttl=60,
                name=options.get_string("resource_record_name"), type=options.get_string("resource_record_type"),
                records=[options.get_string("resource_record_value")],
            )
            # Keyed by the set's own domain names, not through tolist() (whose order Terraform cannot
            # know before the certificate exists): the form Terraform can plan on the first apply.
            options_of = self.certificate.fqn + ".domain_validation_options"
            shared = "" if props.owns_shared_validation else f' if option.domain_name != "{host}"'
            records.add_override(
                "for_each", "${{ for option in " + options_of + " : option.domain_name => option" + shared + " }}")
            # Every record the certificate needs, the shared one included (another region's), so the
            # provider checks the full set; the records of this region are waited for explicitly.
            validated = AcmCertificateValidation(
                self, "validated", certificate_arn=self.certificate.arn, depends_on=[records],
                timeouts=AcmCertificateValidationTimeouts(create=VALIDATION_TIMEOUT),
                validation_record_fqdns=Token.as_list(
                    "${[ for option in " + options_of + " : trimsuffix(option.resource_record_name, \".\") ]}"),
            )
        lb_trust = irsa_trust(self, "load-balancer-trust", cluster.oidc_provider.arn, cluster.issuer,
                              LOAD_BALANCER_SERVICE_ACCOUNT)
        self.load_balancer_role = IamRole(self, "load-balancer", name=fitted(name, "-load-balancer"),
                                          assume_role_policy=lb_trust.json)
        IamRolePolicy(self, "load-balancer-policy", role=self.load_balancer_role.name,
                      name="aws-load-balancer-controller", policy=json.dumps(load_balancer_policy(region, vpc_id)))
        dns_trust = irsa_trust(self, "dns-trust", cluster.oidc_provider.arn, cluster.issuer, DNS_SERVICE_ACCOUNT)
        self.dns_role = IamRole(self, "dns", name=fitted(name, "-external-dns"), assume_role_policy=dns_trust.json)
        IamRolePolicy(self, "dns-policy", role=self.dns_role.name, name="external-dns", policy=dns_policy(zone_id, [region_host, *props.dns_names]))
        self.access = EdgeAccess(
            certificate_arn=validated.certificate_arn if props.tls else None,
            cluster_name=name, region=region, vpc_id=vpc_id, load_balancer_role_arn=self.load_balancer_role.arn,
            dns_role_arn=self.dns_role.arn, zone_id=zone_id, zone_name=props.zone_name, host=host, region_host=region_host,
        )
