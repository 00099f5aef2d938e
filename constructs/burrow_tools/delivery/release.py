"""`make release`: record the digests of the images just pushed as `release.json`.

Usage: python -m burrow_tools.delivery.release record <registry> <tag> <out.json>   (after `make images`)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from burrow.config.release import SERVICES, Release, ReleasedImage


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
