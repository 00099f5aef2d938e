"""Preview environments: one pull request's app stack in a shared non-production cluster.

`make preview PR=42` synthesizes (and deploys) `pr-42-app` into the cluster of the environment
whose `previews.enabled` is true (`qa`): namespace `burrow-pr-42` with Pod Security `restricted`,
a ResourceQuota and LimitRange, default-deny NetworkPolicies (no other namespace's pods, other
previews included, may reach it, nor it them, beyond DNS), its own single RabbitMQ without
persistence, and the workers at the PR's images (`RELEASE=release.json`, else the host's). Its
broker credentials are generated inside the cluster by External Secrets, so they are in no
Terraform state. Its state lives under `<host>/previews/pr-42.tfstate` in the host's bucket. The
namespace carries the PR number, commit and expiry as labels for the scheduled clean-up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from burrow.config.schema import (
    EnvironmentConfig,
    MonitoringConfig,
    PersistenceConfig,
    ResourceAmounts,
    Resources,
    Tier,
)
from burrow.errors import ConfigError

PREVIEW_VARIABLE = "BURROW_PREVIEW"
HOST_VARIABLE = "BURROW_PREVIEW_HOST"
COMMIT_VARIABLE = "BURROW_PREVIEW_COMMIT"
CREATED_VARIABLE = "BURROW_PREVIEW_CREATED"
LABEL_PREVIEW = "burrow.dev/preview"
LABEL_PR = "burrow.dev/pr"
LABEL_COMMIT = "burrow.dev/commit"
LABEL_EXPIRES = "burrow.dev/expires-at"
#: Label values may not hold ':' — expiry is written as 20261125T093000Z.
EXPIRY_FORMAT = "%Y%m%dT%H%M%SZ"
SMALL = Resources(requests=ResourceAmounts(cpu="100m", memory="256Mi"), limits=ResourceAmounts(cpu="500m", memory="512Mi"))


@dataclass(frozen=True)
class PreviewRequest:
    """Which pull request, at which commit, created when (the expiry counts from here)."""

    pr: int
    commit: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    @property
    def stack_name(self) -> str:
        return f"pr-{self.pr}-app"

    @property
    def namespace(self) -> str:
        return f"burrow-pr-{self.pr}"

    def expires_at(self, ttl_hours: int) -> datetime:
        return self.created_at + timedelta(hours=ttl_hours)

    def labels(self, ttl_hours: int) -> dict[str, str]:
        labels = {LABEL_PREVIEW: "true", LABEL_PR: str(self.pr),
                  LABEL_EXPIRES: self.expires_at(ttl_hours).strftime(EXPIRY_FORMAT)}
        if self.commit:
            labels[LABEL_COMMIT] = self.commit
        return labels


def parse_pr(value: str, key: str = "PR") -> int:
    """A pull request number: a positive integer, else a ConfigError naming the key."""
    text = value.strip()
    if not text.isdigit() or int(text) < 1 or len(text) > 9:
        raise ConfigError(f"{key} = {value!r}: a pull request number is a positive integer (e.g. PR=42)")
    return int(text)


def request_from_environment(environ: Mapping[str, str] = os.environ) -> PreviewRequest | None:
    """The preview `BURROW_PREVIEW` asks for (with `BURROW_PREVIEW_COMMIT`, `BURROW_PREVIEW_CREATED`),
    or None when no preview is asked for."""
    raw = environ.get(PREVIEW_VARIABLE)
    if not raw:
        return None
    pr = parse_pr(raw)
    commit = environ.get(COMMIT_VARIABLE) or None
    if commit is not None and not (7 <= len(commit) <= 40 and all(c in "0123456789abcdef" for c in commit)):
        raise ConfigError(f"COMMIT = {commit!r}: a commit is 7 to 40 lowercase hex digits (git rev-parse HEAD)")
    created = environ.get(CREATED_VARIABLE)
    if not created:
        return PreviewRequest(pr, commit)
    try:
        when = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{CREATED_VARIABLE} = {created!r}: an ISO 8601 time, e.g. 2026-11-23T09:30:00Z") from None
    return PreviewRequest(pr, commit, when.astimezone(UTC))


def preview_host(envs: list[EnvironmentConfig], wanted: str | None) -> EnvironmentConfig:
    """The environment that hosts previews: `wanted` (which must have previews on), else the one
    environment with `previews.enabled`."""
    hosts = [env.name for env in envs if env.previews.enabled]
    if wanted:
        env = next((e for e in envs if e.name == wanted), None)
        if env is None:
            raise ConfigError(f"HOST = {wanted!r}: no such environment; environments with previews: "
                              f"{', '.join(hosts) or 'none'}")
        if not env.previews.enabled:
            raise ConfigError(f"HOST = {wanted!r}: previews are off there (previews.enabled: false); environments "
                              f"with previews: {', '.join(hosts) or 'none'}")
        return env
    if len(hosts) != 1:
        found = ", ".join(hosts) if hosts else "none"
        raise ConfigError(f"previews.enabled is true in {found}; exactly one environment hosts previews, "
                          "or name it with HOST=<environment>")
    return next(e for e in envs if e.name == hosts[0])


def preview_config(host: EnvironmentConfig, request: PreviewRequest) -> EnvironmentConfig:
    """The host's configuration made small and short-lived for one pull request."""
    caps = host.previews.max_replicas
    apps = host.apps
    workers = {}
    for role in ("producer", "consumer"):
        worker = getattr(apps, role)
        scaling = worker.autoscaling.model_copy(update={"max_replicas": min(worker.autoscaling.max_replicas, caps)})
        if role == "consumer":  # KEDA reads only its own namespace's Secrets; a preview's broker password is not there
            scaling = scaling.model_copy(update={"enabled": False})
        workers[role] = worker.model_copy(update={"replicas": 1, "autoscaling": scaling})
    rabbitmq = host.rabbitmq.model_copy(update={
        "replicas": 1, "persistence": PersistenceConfig(enabled=False), "resources": SMALL, "anti_affinity": "soft",
    })
    return host.model_copy(update={
        "name": f"pr{request.pr}",
        "tier": Tier.PREVIEW,
        "namespace": request.namespace,
        "rabbitmq": rabbitmq,
        "apps": apps.model_copy(update=workers),
        "monitoring": MonitoringConfig(enabled=False),
        "guardrails": host.guardrails.model_copy(update={"waivers": []}),
    })
