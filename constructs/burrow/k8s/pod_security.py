"""The Pod Security Standards' `restricted` profile, checked offline on a pod spec.

Burrow's app namespace enforces `restricted` through Pod Security Admission, so a pod
template that breaks it is rejected by the API server at apply time. This module finds
that at synth instead: the guardrails run it on every workload Burrow delivers, and the
Helm render tests run it on what Helm actually produces. It follows the profile's
published controls (baseline plus restricted), for every container, init container and
ephemeral container.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

PSA_LEVEL = "restricted"


def admission_labels(level: str = PSA_LEVEL) -> dict[str, str]:
    """The namespace labels that make Pod Security Admission enforce, audit and warn at `level`."""
    return {f"pod-security.kubernetes.io/{mode}": level for mode in ("enforce", "audit", "warn")}


# Volume types the restricted profile allows.
ALLOWED_VOLUMES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
)
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
ALLOWED_SECCOMP = ("RuntimeDefault", "Localhost")
ALLOWED_SELINUX_TYPES = ("", "container_t", "container_init_t", "container_kvm_t", "container_engine_t")
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def pod_specs(obj: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The pod spec(s) an object runs: a Pod's own, a workload's template, a CronJob's job template."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        yield spec
    elif kind in POD_TEMPLATE_KINDS:
        yield (spec.get("template") or {}).get("spec") or {}
    elif kind == "CronJob":
        yield (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec") or {}


def all_containers(pod: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(`kind name`, container) for every container, init container and ephemeral container."""
    found = []
    for key, label in (("initContainers", "init container"), ("containers", "container"),
                       ("ephemeralContainers", "ephemeral container")):
        found += [(f"{label} {c.get('name')}", c) for c in pod.get(key) or []]
    return found


def _pod_level(pod: Mapping[str, Any]) -> list[str]:
    problems = []
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            problems.append(f"pod: {field} must be false")
    ctx = pod.get("securityContext") or {}
    for volume in pod.get("volumes") or []:
        kinds = [k for k in volume if k != "name"]
        if not set(kinds) <= ALLOWED_VOLUMES:
            problems.append(f"pod: volume {volume.get('name')} of type {', '.join(kinds)} is not allowed")
    for sysctl in ctx.get("sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            problems.append(f"pod: sysctl {sysctl.get('name')} is not allowed")
    if ctx.get("runAsUser") == 0:
        problems.append("pod: runAsUser must not be 0")
    return problems


def _container(label: str, container: Mapping[str, Any], pod_ctx: Mapping[str, Any]) -> list[str]:
    ctx = container.get("securityContext") or {}
    problems = []
    if ctx.get("privileged"):
        problems.append("must not be privileged")
    if ctx.get("allowPrivilegeEscalation") is not False:
        problems.append("set allowPrivilegeEscalation: false")
    non_root = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
    if non_root is not True:
        problems.append("set runAsNonRoot: true (pod or container)")
    if ctx.get("runAsUser") == 0:
        problems.append("runAsUser must not be 0")
    seccomp = (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
    if seccomp not in ALLOWED_SECCOMP:
        problems.append(f"seccompProfile.type must be RuntimeDefault or Localhost (is {seccomp})")
    capabilities = ctx.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or []):
        problems.append("drop ALL capabilities")
    added = set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}
    if added:
        problems.append(f"may add only NET_BIND_SERVICE (adds {', '.join(sorted(added))})")
    if any(port.get("hostPort") for port in container.get("ports") or []):
        problems.append("must not use hostPort")
    if (ctx.get("windowsOptions") or {}).get("hostProcess"):
        problems.append("must not be a Windows host process")
    if ctx.get("procMount") not in (None, "Default"):
        problems.append("procMount must be Default")
    selinux = ctx.get("seLinuxOptions") or {}
    if selinux.get("type", "") not in ALLOWED_SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
        problems.append("seLinuxOptions may set only an allowed type")
    return [f"{label}: {p}" for p in problems]


def restricted_violations(pod: Mapping[str, Any]) -> list[str]:
    """What in `pod` (a PodSpec) breaks the `restricted` Pod Security Standard; empty when compliant."""
    pod_ctx = pod.get("securityContext") or {}
    problems = _pod_level(pod)
    for label, container in all_containers(pod):
        problems += _container(label, container, pod_ctx)
    return problems
