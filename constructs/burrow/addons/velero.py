"""Velero: backups that restore. The app namespace (its objects, and RabbitMQ's volumes as EBS
snapshots) is backed up on the environment's schedules into its backup bucket, which lives in
the common layer and outlives the cluster (`burrow.common.backups`).

The pinned chart runs Velero with the AWS plugin as an init container, authenticated by IRSA (no
credentials Secret), one `BackupStorageLocation` (the bucket) and one `VolumeSnapshotLocation`
(EBS in the environment's region). Burrow's `Schedule`s and, with monitoring, a PrometheusRule
(a backup failed; none succeeded within a schedule's window) follow as one object release.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from burrow.addons import kinds as k
from burrow.addons.base import ClusterAddOn, HelmAddOn, owned_namespace
from burrow.addons.monitoring import MONITORING
from burrow.addons.settings import BackupScheduleConfig, BackupsConfig
from burrow.k8s.objects import MANAGED_BY, K8sObject, metadata
from burrow.k8s.release import KubernetesObjects
from burrow.monitoring.rules import Alert, prometheus_rule, selector
from burrow.pins import VELERO
from burrow.spi import BackupAccess, ClusterInfo
from constructs import Construct

CHART_VERSION = VELERO.version
PLUGIN_IMAGE = VELERO.image("plugin-for-aws").reference  # the plugin line made for Velero 1.17
NAMESPACE = "velero"
SERVICE_ACCOUNT = "velero"
LOCATION = "default"
#: Helm installs the chart's CRDs from its crds/ folder; its CRD upgrade hook (a Job with its own
#: ClusterRole) is off (`upgradeCRDs`). The server's ClusterRoleBinding stays: the chart binds
#: Velero's service account to `cluster-admin` (`rbac.clusterAdministrator`), which backing up and
#: restoring any kind needs.
KINDS = k.ChartKinds(
    chart="velero",
    kinds=(k.DEPLOYMENT, (k.RBAC, "ClusterRoleBinding"), *k.NAMESPACE_RBAC, *k.core("ConfigMap", "Service", "ServiceAccount"),
           ("velero.io/v1", "BackupStorageLocation"), ("velero.io/v1", "VolumeSnapshotLocation")),
    when={"metrics.serviceMonitor.enabled": (k.SERVICE_MONITOR,)},
    crds=k.group_kinds("velero.io", "Backup", "BackupRepository", "BackupStorageLocation", "DataDownload", "DataUpload",
                     "DeleteBackupRequest", "DownloadRequest", "PodVolumeBackup", "PodVolumeRestore", "Restore",
                     "Schedule", "ServerStatusRequest", "VolumeSnapshotLocation"),
)
NO_ESCALATION = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def schedule_name(name: str) -> str:
    return f"burrow-{name}"


def velero_values(access: BackupAccess, monitoring: bool) -> dict[str, Any]:
    return {
        "initContainers": [{
            "name": "velero-plugin-for-aws",
            "image": PLUGIN_IMAGE,
            "imagePullPolicy": "IfNotPresent",
            "volumeMounts": [{"mountPath": "/target", "name": "plugins"}],
            "securityContext": NO_ESCALATION,
        }],
        "credentials": {"useSecret": False},
        "serviceAccount": {"server": {
            "create": True,
            "name": SERVICE_ACCOUNT,
            "annotations": {"eks.amazonaws.com/role-arn": access.role_arn},
        }},
        # The IRSA token is readable by the pod's group. (runAsNonRoot is not set: the image names
        # its user, which the kubelet cannot verify as non-root.)
        "podSecurityContext": {"fsGroup": 65534, "seccompProfile": {"type": "RuntimeDefault"}},
        "containerSecurityContext": NO_ESCALATION,
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "configuration": {
            "backupStorageLocation": [{"name": LOCATION, "provider": "aws", "bucket": access.bucket, "default": True,
                                       "config": {"region": access.region}}],
            "volumeSnapshotLocation": [{"name": LOCATION, "provider": "aws", "config": {"region": access.region}}],
        },
        "backupsEnabled": True,
        "snapshotsEnabled": True,
        "deployNodeAgent": False,
        # Helm installs the CRDs from the chart's crds/ folder. The chart's upgrade hook would run
        # bitnamilegacy/kubectl:<cluster minor>, which does not exist for 1.34 and later, and fail
        # the install (burrow.pins.VELERO says how its CRDs are upgraded instead).
        "upgradeCRDs": False,
        "metrics": {"enabled": True, "serviceMonitor": {"enabled": monitoring}},
    }


def schedule(name: str, config: BackupScheduleConfig, app_namespace: str) -> K8sObject:
    """A Velero Schedule of the app namespace without its Secrets; `ttl` is the retention."""
    return {
        "apiVersion": "velero.io/v1",
        "kind": "Schedule",
        "metadata": metadata(schedule_name(name), NAMESPACE, MANAGED_BY),
        "spec": {
            "schedule": config.cron,
            "useOwnerReferencesInBackup": False,
            "template": {
                "includedNamespaces": [app_namespace],
                # Secrets stay in Secrets Manager: External Secrets recreates them from the backed-up
                # ExternalSecrets after a restore, and no credential lands in the bucket.
                "excludedResources": ["secrets"],
                "snapshotVolumes": config.snapshot_volumes,
                "storageLocation": LOCATION,
                "volumeSnapshotLocations": [LOCATION],
                "ttl": f"{config.retention_days * 24}h0m0s",
            },
        },
    }


def backup_alerts(config: BackupsConfig) -> list[Alert]:
    """Per schedule: a backup failed (or partly failed); no backup succeeded within its window."""
    alerts = []
    for name, scheduled in config.schedules.items():
        of = selector(schedule=schedule_name(name))
        title = "".join(part.capitalize() for part in name.split("-"))
        window = scheduled.alert_after_hours
        alerts += [
            Alert(
                f"BurrowBackup{title}Failed",
                f"increase(velero_backup_failure_total{of}[1h]) + increase(velero_backup_partial_failure_total{of}[1h]) > 0",
                1,
                "warning",
                f"a backup of schedule {schedule_name(name)} failed or partly failed",
                f"velero backup get --selector velero.io/schedule-name={schedule_name(name)}; "
                "velero backup describe <name> --details; velero backup logs <name>.",
            ),
            Alert(
                f"BurrowBackup{title}Missing",
                f"time() - max(velero_backup_last_successful_timestamp{of}) > {window * 3600} "
                f"or absent(velero_backup_last_successful_timestamp{of})",
                15 if window <= 1 else 60,
                "critical",
                f"no backup of schedule {schedule_name(name)} succeeded in the last {window} hours",
                "kubectl -n velero get schedules,backupstoragelocations; a location that is not Available cannot "
                "be written (bucket policy, IRSA role); velero schedule describe to see the last backup.",
            ),
        ]
    return alerts


@dataclass(frozen=True)
class VeleroAddOn(ClusterAddOn):
    """Velero's chart with the AWS plugin (pinned), then Burrow's Schedules and backup alerts."""

    access: BackupAccess
    config: BackupsConfig
    app_namespace: str
    monitoring: bool = False
    name: str = "velero"
    #: Digests of the chart's images by name (`HelmAddOn.digests`). default: none (the chart's tags)
    digests: Mapping[str, str] = field(default_factory=dict)

    def deploy(self, scope: Construct, cluster: ClusterInfo) -> Construct:
        holder = Construct(scope, self.name)
        chart = HelmAddOn(
            name=self.name, repository=VELERO.repository, chart="velero",
            version=CHART_VERSION, namespace=NAMESPACE, values=velero_values(self.access, self.monitoring),
            after=(MONITORING,) if self.monitoring else (), digests=self.digests,
        )
        release = chart.release(holder, ClusterInfo.providers_of(scope).helm)
        objects = [schedule(name, config, self.app_namespace) for name, config in self.config.schedules.items()]
        if self.monitoring:
            objects.append(prometheus_rule("burrow-backups", NAMESPACE, MANAGED_BY, "burrow.backups",
                                           backup_alerts(self.config)))
        KubernetesObjects(
            holder,
            "schedules",
            {"release_name": "burrow-backups", "namespace": NAMESPACE, "objects": objects},
            depends_on=[*filter(None, [owned_namespace(scope, NAMESPACE)]), release],
        )
        return holder
