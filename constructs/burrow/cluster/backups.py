"""`BackupAccessRole`: Velero's IRSA role in one cluster.

It may use the environment's backup bucket and its key (`burrow.common.backups`, in the common
layer so backups outlive the cluster), and snapshot, restore and delete only EBS volumes and
snapshots tagged as this cluster's (`burrow.dev/cluster`, which the EBS CSI driver puts on every
volume it creates and Velero copies onto its snapshots).
"""

from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.iam_role import IamRole
from cdktf_cdktf_provider_aws.iam_role_policy import IamRolePolicy

from burrow.cluster.eks import VOLUME_CLUSTER_TAG, EksCluster, irsa_trust
from burrow.common.backups import BackupStorage
from burrow.names import fitted
from burrow.spi import BackupAccess
from constructs import Construct

NAMESPACE = "velero"
SERVICE_ACCOUNT = "velero"
SERVICE_ACCOUNT_SUBJECT = f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"


def velero_role_name(cluster: str) -> str:
    """Velero's role in `cluster`: the backup bucket, made before it, admits it by this name."""
    return fitted(cluster, "-velero")


def velero_policy(bucket_arn: str, key_arn: str, region: str, account: str, cluster: str) -> str:
    ec2 = f"arn:aws:ec2:{region}"
    ours = {"StringEquals": {f"aws:ResourceTag/{VOLUME_CLUSTER_TAG}": cluster}}
    statements = [
        {"Sid": "ListTheBucket", "Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": bucket_arn},
        {"Sid": "UseTheBucket", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts"],
         "Resource": f"{bucket_arn}/*"},
        {"Sid": "UseTheKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
         "Resource": key_arn},
        {"Sid": "DescribeVolumesAndSnapshots", "Effect": "Allow",
         "Action": ["ec2:DescribeVolumes", "ec2:DescribeSnapshots"], "Resource": "*",
         "Condition": {"StringEquals": {"aws:RequestedRegion": region}}},
        {"Sid": "SnapshotThisClustersVolumes", "Effect": "Allow", "Action": "ec2:CreateSnapshot",
         "Resource": f"{ec2}:{account}:volume/*", "Condition": ours},
        {"Sid": "CreateSnapshots", "Effect": "Allow", "Action": "ec2:CreateSnapshot", "Resource": f"{ec2}::snapshot/*"},
        {"Sid": "RestoreFromThisClustersSnapshots", "Effect": "Allow", "Action": "ec2:CreateVolume",
         "Resource": f"{ec2}::snapshot/*", "Condition": ours},
        {"Sid": "CreateRestoredVolumes", "Effect": "Allow", "Action": "ec2:CreateVolume",
         "Resource": f"{ec2}:{account}:volume/*"},
        {"Sid": "TagWhatItCreates", "Effect": "Allow", "Action": "ec2:CreateTags",
         "Resource": [f"{ec2}::snapshot/*", f"{ec2}:{account}:volume/*"],
         "Condition": {"StringEquals": {"ec2:CreateAction": ["CreateSnapshot", "CreateVolume"]}}},
        {"Sid": "DeleteThisClustersSnapshots", "Effect": "Allow", "Action": "ec2:DeleteSnapshot",
         "Resource": f"{ec2}::snapshot/*", "Condition": ours},
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, separators=(",", ":"))


class BackupAccessRole(Construct):
    """Velero's IRSA role for `cluster` over `storage`. Escape hatch: `role`. `access` is what the
    add-ons stack needs to install Velero."""

    def __init__(
        self, scope: Construct, id: str, *, storage: BackupStorage, cluster: EksCluster, region: str, account_id: str
    ) -> None:
        super().__init__(scope, id)
        trust = irsa_trust(self, "trust", cluster.oidc_provider.arn, cluster.issuer, SERVICE_ACCOUNT_SUBJECT)
        self.role = IamRole(self, "role", name=velero_role_name(cluster.name), assume_role_policy=trust.json)
        IamRolePolicy(
            self, "policy", role=self.role.name, name="velero",
            policy=velero_policy(storage.storage.bucket.arn, storage.kms_key.arn, region, account_id, cluster.name),
        )
        self.access = BackupAccess(bucket=storage.bucket_name, region=region, role_arn=self.role.arn)
