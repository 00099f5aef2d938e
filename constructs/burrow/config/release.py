"""A release: the image digests built once on main and promoted unchanged through the environments.

`release.json` = {"images": {"producer": {"registry", "repository", "digest"}, "consumer": {…}}}.
`make deploy ENV=… RELEASE=release.json` synthesizes with these images pinned by digest
(`BURROW_RELEASE`); `make release` writes the file after the images are pushed.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from burrow.config.schema import EnvironmentConfig
from burrow.errors import ConfigError

SERVICES = ("producer", "consumer")
RELEASE_VARIABLE = "BURROW_RELEASE"


class ReleasedImage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    registry: str = Field(min_length=1)
    repository: str = Field(min_length=1)
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")


class Release(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    images: dict[str, ReleasedImage]


def load_release(path: Path) -> Release:
    try:
        return Release.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: release file not found") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: not a valid release: {exc}") from None


def apply_release(env: EnvironmentConfig, release: Release) -> EnvironmentConfig:
    """`env` with each released service's image replaced by the released digest."""
    apps = env.apps
    for name in SERVICES:
        released = release.images.get(name)
        if released is None:
            continue
        worker = getattr(apps, name)
        image = worker.image.model_copy(update=released.model_dump())
        apps = apps.model_copy(update={name: worker.model_copy(update={"image": image})})
    return env.model_copy(update={"apps": apps})
