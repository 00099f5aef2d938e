"""The one table of Burrow's deliberate differences from the upstream reference IAM policies.

`burrow_tools.iam_conformance.check` fails on any difference not listed here (and on a row that
no longer matches a difference); docs/iam.md shows the same rows (a test compares them). A row
names the actions, what the reference grants them on, what Burrow grants them on (shapes, as
`iam_conformance` reduces them) and why. A narrowing that breaks a code path the controller runs
at Burrow's settings is a defect, not a row: each reason says why the path is not taken.
"""

from __future__ import annotations

from burrow_tools.iam_conformance import Declared

ANY = ("*",)
REGION_EC2 = "arn:aws:ec2:{region}"
BUCKET_OBJECTS = ("{aws_s3_bucket.arn}/*",)
HOSTED_ZONES = ("arn:aws:route53:::hostedzone/*",)
THIS_ZONE = ("arn:aws:route53:::hostedzone/{aws_route53_zone.zone_id}",)

DECLARED: tuple[Declared, ...] = (
    Declared(
        "aws-load-balancer-controller",
        "narrowed",
        ("ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"),
        ANY,
        (f"{REGION_EC2}:*:security-group/*",),
        "Only security groups of the cluster's VPC (`ec2:Vpc`), in its region. The controller opens the "
        "EKS cluster security group (which every node, managed or Karpenter's, carries) and its own "
        "load balancer groups to its load balancers; all of them are in that VPC. The reference's "
        "second, tag-conditioned grant is subsumed.",
        conditions=("ArnLike ec2:Vpc",),
    ),
    Declared(
        "aws-load-balancer-controller",
        "dropped",
        (
            "shield:CreateProtection",
            "shield:DeleteProtection",
            "shield:DescribeProtection",
            "shield:GetSubscriptionState",
        ),
        ANY,
        (),
        "Shield Advanced is off (`enableShield: false`): the controller does not call Shield.",
    ),
    Declared(
        "aws-load-balancer-controller",
        "dropped",
        (
            "waf-regional:AssociateWebACL",
            "waf-regional:DisassociateWebACL",
            "waf-regional:GetWebACL",
            "waf-regional:GetWebACLForResource",
            "wafv2:AssociateWebACL",
            "wafv2:DisassociateWebACL",
            "wafv2:GetWebACL",
            "wafv2:GetWebACLForResource",
            "elasticloadbalancing:SetWebAcl",
        ),
        ANY,
        (),
        "WAF Classic and WAFv2 are off (`enableWaf: false`, `enableWafv2: false`): the controller "
        "neither reads nor associates web ACLs.",
    ),
    Declared(
        "aws-load-balancer-controller",
        "dropped",
        ("cognito-idp:DescribeUserPoolClient",),
        ANY,
        (),
        "No Ingress of Burrow uses `auth-type: cognito` (the producer checks its own bearer token); "
        "v3.5.0 calls no Cognito API otherwise.",
    ),
    Declared(
        "aws-load-balancer-controller",
        "dropped",
        ("iam:GetServerCertificate", "iam:ListServerCertificates"),
        ANY,
        (),
        "Certificates come from ACM (discovered by host); v3.5.0's source calls no IAM server certificate API.",
    ),
    Declared(
        "velero",
        "narrowed",
        ("ec2:DescribeSnapshots", "ec2:DescribeVolumes"),
        ANY,
        ANY,
        "Only in the cluster's region (`aws:RequestedRegion`): the snapshot location is that region's.",
        conditions=("StringEquals aws:RequestedRegion",),
    ),
    Declared(
        "velero",
        "narrowed",
        ("ec2:CreateSnapshot",),
        ANY,
        (f"{REGION_EC2}::snapshot/*", f"{REGION_EC2}:{{account}}:volume/*"),
        "Snapshots of this cluster's volumes only (tag `burrow.dev/cluster`, which the EBS CSI driver "
        "puts on every volume it creates), in its region.",
        conditions=("StringEquals aws:ResourceTag/burrow.dev/cluster",),
    ),
    Declared(
        "velero",
        "narrowed",
        ("ec2:CreateVolume",),
        ANY,
        (f"{REGION_EC2}::snapshot/*", f"{REGION_EC2}:{{account}}:volume/*"),
        "Restores only from this cluster's snapshots (the plugin copies the volume's tags onto each "
        "snapshot), in its region.",
        conditions=("StringEquals aws:ResourceTag/burrow.dev/cluster",),
    ),
    Declared(
        "velero",
        "narrowed",
        ("ec2:CreateTags",),
        ANY,
        (f"{REGION_EC2}::snapshot/*", f"{REGION_EC2}:{{account}}:volume/*"),
        "Tags only while creating a snapshot or volume (`ec2:CreateAction`): the plugin tags through "
        "`TagSpecifications` of CreateSnapshot and CreateVolume, never afterwards.",
        conditions=("StringEquals ec2:CreateAction",),
    ),
    Declared(
        "velero",
        "narrowed",
        ("ec2:DeleteSnapshot",),
        ANY,
        (f"{REGION_EC2}::snapshot/*",),
        "Deletes only this cluster's snapshots (tag `burrow.dev/cluster`).",
        conditions=("StringEquals aws:ResourceTag/burrow.dev/cluster",),
    ),
    Declared(
        "velero",
        "dropped",
        ("s3:PutObjectTagging",),
        BUCKET_OBJECTS,
        (),
        "Only needed with `config.tagging` on the BackupStorageLocation, which Burrow does not set "
        "(the upstream README says so).",
    ),
    Declared(
        "velero",
        "addition",
        ("kms:Decrypt", "kms:GenerateDataKey"),
        (),
        ("{aws_kms_key.arn}",),
        "The bucket is encrypted with a KMS key of its own (SSE-KMS by default): S3 needs the caller's "
        "GenerateDataKey to write and Decrypt to read and to complete multipart uploads. Only that key.",
    ),
    Declared(
        "external-dns",
        "narrowed",
        ("route53:ListResourceRecordSets", "route53:ListTagsForResources"),
        HOSTED_ZONES,
        THIS_ZONE,
        "The environment's zone only: external-dns runs with `--zone-id-filter` for it, so it lists no "
        "other zone's records (and reads zone tags only with `--aws-zone-tags`, unused).",
    ),
    Declared(
        "external-dns",
        "narrowed",
        ("route53:ChangeResourceRecordSets",),
        HOSTED_ZONES,
        THIS_ZONE,
        "The environment's zone only, and in it only Burrow's names "
        "(`route53:ChangeResourceRecordSetsNormalizedRecordNames`: `<region>.<host>`, with federation "
        "`rabbitmq.<region>.<zone>`, and their TXT registry records, which 0.21 names `a-`, `aaaa-` or "
        "`cname-` before the first label, no `--txt-prefix`/`--txt-suffix` set) of the types it writes "
        "(`route53:ChangeResourceRecordSetsRecordTypes`: A, AAAA, CNAME, TXT). An annotated object "
        "naming any other record of the zone is refused by Route 53.",
        conditions=("ForAllValues:StringEquals route53:ChangeResourceRecordSetsNormalizedRecordNames",
                    "ForAllValues:StringEquals route53:ChangeResourceRecordSetsRecordTypes"),
    ),
)

#: Managed policies of Karpenter's reference node role that Burrow attaches only when configured.
NODE_POLICIES_ON_REQUEST: dict[str, str] = {
    "AmazonSSMManagedInstanceCore": "Session Manager shells are root on the nodes that run the broker and "
    "the producer: attached only with `karpenter.session_manager: true` (default: off).",
}
