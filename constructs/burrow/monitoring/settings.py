"""Settings of the monitoring objects: when Burrow's alerts fire and where they are sent (pydantic only)."""

from __future__ import annotations

from pydantic import Field

from burrow.settings import DnsLabel, Model


class AlertThresholds(Model):
    """When Burrow's alerts fire. Durations are minutes."""

    queue_depth: int = Field(default=1000, ge=1, description="ready messages on the work queue")
    queue_depth_minutes: int = Field(default=10, ge=1, le=1440)
    dead_letter_minutes: int = Field(
        default=15, ge=1, le=1440, description="window in which any new dead letter alerts"
    )
    restarts: int = Field(default=3, ge=1, le=100, description="container restarts within 30 minutes")
    not_ready_minutes: int = Field(default=5, ge=1, le=1440)


class SecretKeyRef(Model):
    name: DnsLabel
    key: str = Field(min_length=1)


class AlertReceiver(Model):
    """Where this environment's alerts go: a webhook whose URL lives in a Secret the team creates
    in the app namespace (never in the configuration or the synthesized JSON)."""

    name: DnsLabel
    webhook_url_secret: SecretKeyRef
    send_resolved: bool = True
