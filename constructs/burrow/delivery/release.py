"""A release: the image digests built once on main and promoted unchanged through the environments.

`release.json` = {"images": {"producer": {"registry", "repository", "digest"}, "consumer": {…}}}.
`make deploy ENV=… RELEASE=release.json` synthesizes with these images pinned by digest.

Usage: python -m burrow.delivery.release record <registry> <tag> <out.json>   (after `make images`)
"""

from __future__ import annotations

import json
import subprocess
import sys
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


def record(registry: str, tag: str, out: Path) -> Release:
    """Resolve `<registry>/burrow/<service>:<tag>` to digests (after push) and write the release."""
    images = {}
    for service in SERVICES:
        reference = f"{registry}/burrow/{service}:{tag}"
        inspected = subprocess.run(
            ["docker", "buildx", "imagetools", "inspect", reference, "--format", "{{json .Manifest}}"],
            check=True,
            capture_output=True,
            text=True,
        )
        digest = json.loads(inspected.stdout)["digest"]
        images[service] = ReleasedImage(registry=registry, repository=f"burrow/{service}", digest=digest)
    release = Release(images=images)
    out.write_text(release.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return release


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "record":
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    print(record(sys.argv[2], sys.argv[3], Path(sys.argv[4])).model_dump_json(indent=2))
