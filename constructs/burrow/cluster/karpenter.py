"""`NodeAutoscaling`: the AWS side of Karpenter for one EKS cluster.

Karpenter launches and removes EC2 instances for pods the scheduler cannot place. For that it needs:
- a controller role. Burrow uses IRSA, as for the EBS CSI driver and External Secrets: one
  identity mechanism for every add-on, no extra EKS add-on (Pod Identity needs its agent), and one
  the AWS emulator rehearsal can create and check. Its permissions follow Karpenter's own
  reference policy, scoped to instances, launch templates and instance profiles tagged for this
  cluster;
- a node role its instances run with, admitted to the cluster by an EKS access entry (`EC2_LINUX`);
- an SQS interruption queue that EventBridge feeds with spot interruption warnings, rebalance
  recommendations, instance state changes, capacity reservation interruptions and AWS Health
  scheduled changes, so Karpenter drains a node before EC2 takes it away;
- the `karpenter.sh/discovery` tag on the cluster security group (the private subnets carry it
  from the common layer), which its EC2NodeClass selects by;
- with Spot capacity, a plan-time check that the account has EC2's Spot service-linked role
  (`AWSServiceRoleForEC2Spot`), without which every Spot launch fails. Burrow does not create it:
  it is one per account (regions and environments share it, and creating it again fails), and
  most accounts already have it. docs/iam.md says how to create it once.
"""

from __future__ import annotations

import json
from typing import Any

from cdktf import Precondition, TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.cloudwatch_event_rule import CloudwatchEventRule
from cdktf_cdktf_provider_aws.cloudwatch_event_target import CloudwatchEventTarget
from cdktf_cdktf_provider_aws.data_aws_iam_roles import DataAwsIamRoles
from cdktf_cdktf_provider_aws.ec2_tag import Ec2Tag
from cdktf_cdktf_provider_aws.eks_access_entry import EksAccessEntry
from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy
from cdktf_cdktf_provider_aws.sqs_queue import SqsQueue
from cdktf_cdktf_provider_aws.sqs_queue_policy import SqsQueuePolicy

from burrow.cluster.eks import EksCluster, irsa_trust, service_role
from burrow.names import EVENT_RULE_NAME_MAX, SQS_QUEUE_NAME_MAX, fitted
from burrow.spi import NodeAutoscalingAccess
from constructs import Construct

DISCOVERY_TAG = "karpenter.sh/discovery"
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "karpenter"
SERVICE_ACCOUNT_SUBJECT = f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"
#: The node role's managed policies, as in Karpenter's reference template: the worker and CNI policies
#: of every node and image pulls only (not the registry read-only policy's listing).
KARPENTER_NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryPullOnly")
#: Session Manager on the nodes, which the reference template also attaches: a session is root on a
#: node that runs the broker and the producer, so Burrow attaches it only when asked
#: (`karpenter.session_manager`).
SESSION_MANAGER_POLICY = "AmazonSSMManagedInstanceCore"
#: What EventBridge forwards to the interruption queue (rule suffix -> event pattern).
INTERRUPTION_EVENTS = {
    "scheduled-change": {"source": ["aws.health"], "detail-type": ["AWS Health Event"]},
    "spot-interruption": {"source": ["aws.ec2"], "detail-type": ["EC2 Spot Instance Interruption Warning"]},
    "rebalance": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance Rebalance Recommendation"]},
    "instance-state-change": {"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]},
    "capacity-reservation": {
        "source": ["aws.ec2"], "detail-type": ["EC2 Capacity Reservation Instance Interruption Warning"]},
}


#: Where the account's EC2 Spot service-linked role (`AWSServiceRoleForEC2Spot`) lives.
SPOT_ROLE_PATH = "/aws-service-role/spot.amazonaws.com/"
SPOT_ROLE_MISSING = (
    "Karpenter may launch Spot here (karpenter.capacity_types), but the account has no EC2 Spot service-linked "
    "role (AWSServiceRoleForEC2Spot), so every Spot launch would fail. Create it once per account: "
    "aws iam create-service-linked-role --aws-service-name spot.amazonaws.com (docs/iam.md)."
)


def controller_policy(cluster: str, region: str, account: str, queue_arn: str, node_role_arn: str) -> str:
    """Karpenter's controller permissions (its reference policy at the pinned version), for one cluster
    and region. The deliberate differences from the reference are in `burrow_tools.iam_narrowings`
    and docs/iam.md."""
    ec2 = f"arn:aws:ec2:{region}"
    owned = {f"aws:ResourceTag/kubernetes.io/cluster/{cluster}": "owned"}
    request_owned = {f"aws:RequestTag/kubernetes.io/cluster/{cluster}": "owned", "aws:RequestTag/eks:eks-cluster-name": cluster}
    profile = f"arn:aws:iam::{account}:instance-profile/*"
    cluster_arn = f"arn:aws:eks:{region}:{account}:cluster/{cluster}"
    launched = [f"{ec2}:*:{kind}/*" for kind in
                ("fleet", "instance", "volume", "network-interface", "launch-template", "spot-instances-request")]

    def statement(sid: str, actions: list[str], resources: Any, condition: dict | None = None) -> dict:
        return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources, **({"Condition": condition} if condition else {})}

    statements = [
        statement("ScopedEC2InstanceAccess", ["ec2:RunInstances", "ec2:CreateFleet"],
                  [f"{ec2}::image/*", f"{ec2}::snapshot/*", f"{ec2}:*:security-group/*", f"{ec2}:*:subnet/*",
                   f"{ec2}:*:capacity-reservation/*", f"{ec2}:*:placement-group/*"]),
        statement("ScopedEC2LaunchTemplateAccess", ["ec2:RunInstances", "ec2:CreateFleet"], f"{ec2}:*:launch-template/*",
                  {"StringEquals": owned, "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}}),
        statement("ScopedEC2InstanceActionsWithTags", ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
                  launched, {"StringEquals": request_owned, "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}),
        statement("ScopedResourceCreationTagging", ["ec2:CreateTags"], launched,
                  {"StringEquals": {**request_owned, "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"]},
                   "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}}),
        statement("ScopedResourceTagging", ["ec2:CreateTags"], f"{ec2}:*:instance/*",
                  {"StringEquals": owned, "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                   "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": cluster},
                   "ForAllValues:StringEquals": {"aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]}}),
        statement("ScopedDeletion", ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
                  [f"{ec2}:*:instance/*", f"{ec2}:*:launch-template/*"],
                  {"StringEquals": owned, "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}}),
        statement("RegionalReadActions",
                  ["ec2:DescribeCapacityReservations", "ec2:DescribeImages", "ec2:DescribeInstances",
                   "ec2:DescribeInstanceStatus", "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes",
                   "ec2:DescribeLaunchTemplates", "ec2:DescribePlacementGroups", "ec2:DescribeSecurityGroups",
                   "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets"],
                  "*", {"StringEquals": {"aws:RequestedRegion": region}}),
        statement("SSMReadActions", ["ssm:GetParameter"], f"arn:aws:ssm:{region}::parameter/aws/service/*"),
        statement("PricingReadActions", ["pricing:GetProducts"], "*"),
        statement("InterruptionQueueActions", ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"], queue_arn),
        statement("PassNodeIAMRole", ["iam:PassRole"], node_role_arn,
                  {"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}}),
        statement("ScopedInstanceProfileCreation", ["iam:CreateInstanceProfile"], profile,
                  {"StringEquals": {**request_owned, "aws:RequestTag/topology.kubernetes.io/region": region},
                   "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}}),
        statement("ScopedInstanceProfileTagging", ["iam:TagInstanceProfile"], profile,
                  {"StringEquals": {**owned, "aws:ResourceTag/topology.kubernetes.io/region": region, **request_owned,
                                    "aws:RequestTag/topology.kubernetes.io/region": region},
                   "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                                  "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"}}),
        statement("ScopedInstanceProfileActions",
                  ["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"], profile,
                  {"StringEquals": {**owned, "aws:ResourceTag/topology.kubernetes.io/region": region},
                   "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"}}),
        statement("UnscopedInstanceProfileListAction", ["iam:ListInstanceProfiles"], "*"),
        statement("InstanceProfileReadActions", ["iam:GetInstanceProfile"], profile),
        statement("APIServerEndpointDiscovery", ["eks:DescribeCluster"], cluster_arn),
        statement("ZonalShiftStatusReadOnly", ["arc-zonal-shift:GetManagedResource"], "*",
                  {"StringEquals": {"arc-zonal-shift:ResourceIdentifier": cluster_arn}}),
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, separators=(",", ":"))


def queue_policy(queue_arn: str) -> str:
    """EventBridge (and SQS itself) may send to the queue, over TLS only."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "EventBridgeSends", "Effect": "Allow",
             "Principal": {"Service": ["events.amazonaws.com", "sqs.amazonaws.com"]},
             "Action": "sqs:SendMessage", "Resource": queue_arn},
            {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "sqs:*",
             "Resource": queue_arn, "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        ],
    })


class NodeAutoscaling(Construct):
    """Karpenter's controller role, node role (with its access entry), interruption queue and
    EventBridge rules, and the discovery tag on the cluster security group, for `cluster`.

    Escape hatches: `controller_role`, `node_role`, `access_entry`, `queue`, `rules` (by event),
    `spot_role_check` (None without Spot). `session_manager` attaches `SESSION_MANAGER_POLICY` to
    the node role (default: off).
    `access` is what the add-ons stack needs to install Karpenter.
    """

    def __init__(
        self, scope: Construct, id: str, *, cluster: EksCluster, region: str, account_id: str, spot: bool = False,
        session_manager: bool = False,
    ) -> None:
        """`spot`: whether the NodePool may launch Spot capacity (default: on-demand only)."""
        super().__init__(scope, id)
        name = cluster.name
        node_role_name = fitted(name, "-karpenter-node")
        self.node_role, node_policies = service_role(
            self, "node-role", node_role_name, "ec2.amazonaws.com",
            (*KARPENTER_NODE_POLICIES, *([SESSION_MANAGER_POLICY] if session_manager else [])),
        )
        self.access_entry = EksAccessEntry(
            self, "node-access", cluster_name=cluster.cluster.name, principal_arn=self.node_role.arn, type="EC2_LINUX",
            depends_on=node_policies,
        )
        self.queue = SqsQueue(
            self, "interruptions", name=fitted(name, "-karpenter", SQS_QUEUE_NAME_MAX), message_retention_seconds=300, sqs_managed_sse_enabled=True
        )
        SqsQueuePolicy(self, "interruptions-policy", queue_url=self.queue.url, policy=queue_policy(self.queue.arn))
        self.rules = {}
        for event, pattern in INTERRUPTION_EVENTS.items():
            rule = CloudwatchEventRule(
                self, f"rule-{event}", name=fitted(name, f"-karpenter-{event}", EVENT_RULE_NAME_MAX), event_pattern=json.dumps(pattern),
                description=f"Karpenter of {name}: {pattern['detail-type'][0]}",
            )
            CloudwatchEventTarget(self, f"rule-{event}-target", rule=rule.name, target_id="karpenter-interruptions",
                                  arn=self.queue.arn)
            self.rules[event] = rule
        trust = irsa_trust(self, "controller-trust", cluster.oidc_provider.arn, cluster.issuer, SERVICE_ACCOUNT_SUBJECT)
        # With Spot, the controller role (what launches it) requires the account's Spot role, checked
        # at every plan; Terraform stops with SPOT_ROLE_MISSING before changing anything.
        self.spot_role_check = DataAwsIamRoles(self, "spot-service-linked-role", path_prefix=SPOT_ROLE_PATH) if spot else None
        lifecycle = TerraformResourceLifecycle(precondition=[Precondition(
            condition=f"${{length({self.spot_role_check.fqn}.names) > 0}}", error_message=SPOT_ROLE_MISSING,
        )]) if self.spot_role_check else None
        self.controller_role = IamRole(self, "controller", name=fitted(name, "-karpenter"), assume_role_policy=trust.json,
                                       lifecycle=lifecycle)
        IamRolePolicy(
            self, "controller-policy", role=self.controller_role.name, name="karpenter-controller",
            policy=controller_policy(name, region, account_id, self.queue.arn, self.node_role.arn),
        )
        Ec2Tag(self, "security-group-discovery",
               resource_id=cluster.cluster.vpc_config.cluster_security_group_id, key=DISCOVERY_TAG, value=name)
        self.access = NodeAutoscalingAccess(
            cluster_name=cluster.cluster.name,
            controller_role_arn=self.controller_role.arn,
            # The name as configured, not the resource's attribute: it lands in the EC2NodeClass,
            # which is exported as plain YAML and must read the same on every run.
            node_role=node_role_name,
            interruption_queue=self.queue.name,
            discovery=name,
        )
