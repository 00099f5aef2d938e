"""The base of the settings types constructs take in their props, and the values several constructs share.

A settings type is a frozen pydantic model a construct's props hold (`RabbitMqBrokerProps.messaging`
is a `MessagingConfig`); each package keeps its own in `settings.py` beside its constructs
(`burrow.app.settings`, `burrow.addons.settings`, ...). These modules need pydantic only, never cdktf or
a provider binding: the environment schema (the application) builds its sections from them and
validates an environment file before cdktf loads.
"""

from __future__ import annotations

import ipaddress
from enum import Enum
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator

from burrow.props_errors import OneLineModel

DnsLabel = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")]
Quantity = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$")]
#: A fully qualified DNS name in lowercase (`events.example.com`), at most 253 characters (DNS's limit).
Hostname = Annotated[
    str, StringConstraints(pattern=r"^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", max_length=253)
]
#: An AWS account id: twelve digits.
AccountId = Annotated[str, StringConstraints(pattern=r"^[0-9]{12}$")]
#: An AWS region's name (`eu-west-1`, `us-gov-west-1`).
RegionName = Annotated[str, StringConstraints(pattern=r"^(us|eu|ap|sa|ca|me|af|il|mx|cn|eusc)-[a-z0-9-]+-[0-9]+$")]


class Model(OneLineModel):
    """Base of every settings type (and of the environment schema's sections): immutable, no unknown
    keys. Built directly (a team's `MessagingConfig(...)`), a bad value is Burrow's one-line `PropsError`
    naming the model; validated from an environment file, the loader reports file, key and value instead."""


def distinct(values: list, what: str) -> list:
    """`values` if none repeats; a validator's error naming `what` otherwise."""
    if len(set(values)) != len(values):
        raise ValueError(f"lists a {what} twice")
    return values


def ipv4_networks(values: list[str]) -> list[str]:
    """`values` if each is an IPv4 network in CIDR notation (host bits zero) and none repeats."""
    for value in values:
        try:
            ipaddress.IPv4Network(value, strict=True)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IPv4 network in CIDR notation ({exc})") from None
    return distinct(values, "network")


class Tier(str, Enum):
    """How strict the guardrails are for an environment."""

    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"
    #: A short-lived preview of a pull request: development's rules plus namespace quotas.
    PREVIEW = "preview"


class ResourceAmounts(Model):
    cpu: Quantity
    memory: Quantity


class Resources(Model):
    """Container requests and limits; both are always set (no unbounded pods)."""

    requests: ResourceAmounts
    limits: ResourceAmounts


class Image(Model):
    """A container image reference. A tag is required and never `latest`; a digest pins it."""

    registry: str = Field(min_length=1)
    repository: str = Field(min_length=1)
    tag: str = Field(min_length=1)
    digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")

    @field_validator("tag")
    @classmethod
    def _no_latest(cls, tag: str) -> str:
        if tag == "latest":
            raise ValueError("the mutable tag 'latest' is not allowed; use a version tag or a digest")
        return tag

    @property
    def reference(self) -> str:
        """`registry/repository:tag`, or `…@sha256:…` when a digest is configured."""
        base = f"{self.registry}/{self.repository}"
        return f"{base}@{self.digest}" if self.digest else f"{base}:{self.tag}"
