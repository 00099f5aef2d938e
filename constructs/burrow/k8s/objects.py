"""Kubernetes objects in native shape (apiVersion, kind, metadata, spec; camelCase keys).

Burrow builds every workload object once, here, from typed Python. The result is
a plain dict that `kubernetes-validate` checks against the environment's
Kubernetes OpenAPI schema and that Burrow's object chart emits unchanged.
Defaults are the hardened ones (cdk8s-plus style): non-root, read-only root
filesystem, no privilege escalation, all capabilities dropped, RuntimeDefault
seccomp, no service-account token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

K8sObject = dict[str, Any]

# The UID/GID the service images run as (see apps/*/Dockerfile).
APP_UID = 10001

MANAGED_BY = {"app.kubernetes.io/managed-by": "burrow"}


def labels_for(name: str, part_of: str, component: str) -> dict[str, str]:
    """Recommended Kubernetes labels for one workload."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": part_of,
        "app.kubernetes.io/component": component,
        **MANAGED_BY,
    }


def selector_for(labels: Mapping[str, str]) -> dict[str, str]:
    """The immutable subset of labels used in selectors (never the version or managed-by)."""
    return {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/part-of")}


def metadata(name: str, namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": dict(labels)}


@dataclass(frozen=True)
class EnvFromSecret:
    """An environment variable read from one key of a Secret (never an inline value)."""

    name: str
    secret: str
    key: str

    def render(self) -> dict[str, Any]:
        return {"name": self.name, "valueFrom": {"secretKeyRef": {"name": self.secret, "key": self.key}}}


@dataclass(frozen=True)
class HttpProbe:
    """An HTTP GET probe against a container port."""

    path: str
    port: str = "http"
    period_seconds: int = 10
    timeout_seconds: int = 2
    failure_threshold: int = 3
    initial_delay_seconds: int = 0

    def render(self) -> dict[str, Any]:
        probe: dict[str, Any] = {
            "httpGet": {"path": self.path, "port": self.port},
            "periodSeconds": self.period_seconds,
            "timeoutSeconds": self.timeout_seconds,
            "failureThreshold": self.failure_threshold,
        }
        if self.initial_delay_seconds:
            probe["initialDelaySeconds"] = self.initial_delay_seconds
        return probe


def secret_dir(secret: str) -> str:
    """Where a container finds the files of a mounted Secret."""
    return f"/var/run/secrets/burrow/{secret}"


@dataclass(frozen=True)
class ContainerSpec:
    """What Burrow needs to know to run one container."""

    name: str
    image: str
    port: int
    resources: Mapping[str, Mapping[str, str]]
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: Sequence[EnvFromSecret] = ()
    liveness: HttpProbe | None = None
    readiness: HttpProbe | None = None
    startup: HttpProbe | None = None
    #: A writable directory on the pod's own disk (an emptyDir, `state_size` at most) that survives
    #: container restarts but not the pod's deletion, eviction or node loss. None: only /tmp.
    state_dir: str | None = None
    state_size: str = "128Mi"
    #: Secrets mounted read-only as directories (one file per key, which Kubernetes updates when
    #: the Secret changes, unlike an environment variable): variable -> Secret; the variable
    #: holds the directory (`secret_dir(secret)`).
    secret_dirs: Mapping[str, str] = field(default_factory=dict)
    #: The entrypoint and its arguments; empty: the image's own.
    command: Sequence[str] = ()
    args: Sequence[str] = ()

    def render(self) -> dict[str, Any]:
        env = [{"name": k, "value": v} for k, v in self.env.items()] + [s.render() for s in self.secret_env]
        env += [{"name": var, "value": secret_dir(secret)} for var, secret in self.secret_dirs.items()]
        container: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imagePullPolicy": "Always",  # the registry checks pull credentials on every start
            **({"command": list(self.command)} if self.command else {}),
            **({"args": list(self.args)} if self.args else {}),
            "ports": [{"name": "http", "containerPort": self.port, "protocol": "TCP"}],
            "env": env,
            "resources": {k: dict(v) for k, v in self.resources.items()},
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": APP_UID,
                "runAsGroup": APP_UID,
                "readOnlyRootFilesystem": True,
                "allowPrivilegeEscalation": False,
                "privileged": False,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]
            + ([{"name": "state", "mountPath": self.state_dir}] if self.state_dir else [])
            + [{"name": f"secret-{secret}", "mountPath": secret_dir(secret), "readOnly": True}
               for secret in self.secret_dirs.values()],
        }
        for key, probe in (("livenessProbe", self.liveness), ("readinessProbe", self.readiness)):
            if probe:
                container[key] = probe.render()
        if self.startup:
            container["startupProbe"] = self.startup.render()
        return container


def service_account(name: str, namespace: str, labels: Mapping[str, str]) -> K8sObject:
    """A dedicated ServiceAccount whose token is not mounted into pods."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(name, namespace, labels),
        "automountServiceAccountToken": False,
    }


def deployment(
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    replicas: int | None,
    container: ContainerSpec,
    termination_grace_seconds: int,
    spread: Sequence[dict[str, Any]] = (),
    node_selector: Mapping[str, str] | None = None,
) -> K8sObject:
    """A Deployment that rolls without downtime (maxUnavailable 0) and runs hardened pods.

    `replicas` is None when an autoscaler owns the count (a release must not reset it).
    """
    spec: dict[str, Any] = {} if replicas is None else {"replicas": replicas}
    pod_spec: dict[str, Any] = {
        "serviceAccountName": name,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": termination_grace_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": APP_UID,
            "runAsGroup": APP_UID,
            "fsGroup": APP_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container.render()],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
        + ([{"name": "state", "emptyDir": {"sizeLimit": container.state_size}}] if container.state_dir else [])
        + [{"name": f"secret-{secret}", "secret": {"secretName": secret, "defaultMode": 0o440}}
           for secret in container.secret_dirs.values()],
    }
    if spread:
        pod_spec["topologySpreadConstraints"] = list(spread)
    if node_selector:
        pod_spec["nodeSelector"] = dict(node_selector)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(name, namespace, labels),
        "spec": {
            **spec,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector_for(labels)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
        },
    }


def service(name: str, namespace: str, labels: Mapping[str, str], port: int) -> K8sObject:
    """A ClusterIP Service in front of a workload's `http` port."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name, namespace, labels),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_for(labels),
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def topology_spread(labels: Mapping[str, str], hard: bool, zones: bool) -> list[dict[str, Any]]:
    """Spread pods over nodes (and zones): `hard` refuses to schedule rather than stack them."""
    keys = ["kubernetes.io/hostname"] + (["topology.kubernetes.io/zone"] if zones else [])
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "DoNotSchedule" if hard else "ScheduleAnyway",
            "labelSelector": {"matchLabels": selector_for(labels)},
        }
        for key in keys
    ]


def pod_disruption_budget(name: str, namespace: str, labels: Mapping[str, str]) -> K8sObject:
    """At most one pod of the workload down for voluntary disruptions (drains, upgrades)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(name, namespace, labels),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_for(labels)}},
    }


def cpu_autoscaler(
    name: str, namespace: str, labels: Mapping[str, str], minimum: int, maximum: int, cpu_percent: int
) -> K8sObject:
    """A HorizontalPodAutoscaler (autoscaling/v2) on average CPU utilisation."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(name, namespace, labels),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": minimum,
            "maxReplicas": maximum,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu_percent}},
                }
            ],
        },
    }


DNS_PORTS = [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]
#: The labels of the Prometheus pods the Prometheus operator runs (kube-prometheus-stack).
PROMETHEUS = {"app.kubernetes.io/name": "prometheus"}


def network_policy(
    name: str,
    namespace: str,
    pod_labels: Mapping[str, str],
    *,
    ingress: Sequence[dict[str, Any]] | None = None,
    egress: Sequence[dict[str, Any]] | None = None,
) -> K8sObject:
    """A NetworkPolicy for the pods matching `pod_labels` (all pods when empty).

    A direction given (even as an empty list) is isolated and allows only its rules.
    """
    types = [kind for kind, rules in (("Ingress", ingress), ("Egress", egress)) if rules is not None]
    spec: dict[str, Any] = {"podSelector": {"matchLabels": dict(pod_labels)} if pod_labels else {}, "policyTypes": types}
    if ingress is not None:
        spec["ingress"] = list(ingress)
    if egress is not None:
        spec["egress"] = list(egress)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(name, namespace, MANAGED_BY),
        "spec": spec,
    }


def peer_pods(labels: Mapping[str, str]) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": dict(labels)}}


def peer_namespace(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def peer_in_namespace(namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    """The pods with `labels` in `namespace` (one peer: both selectors must match)."""
    return {**peer_namespace(namespace), **peer_pods(labels)}


def tcp_ports(*ports: int | str) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]
