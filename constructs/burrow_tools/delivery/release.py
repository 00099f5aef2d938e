"""`make release`: record the digests of the images just pushed as `release.json`, and the digest
each third-party image the environments deploy by tag names right now (the broker's, and every image of
every add-on chart each environment installs, as its pin in `burrow.pins` lists them), so that
production deploys exactly what was reviewed (CI runs it, where the registries are reachable).

Usage: python -m burrow_tools.delivery.release record <registry> <tag> <out.json>   (after `make images`)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from burrow.config.loader import load_environments
from burrow.config.release import SERVICES, Release, ReleasedImage, third_party_images
from burrow.errors import BurrowError

ROOT = Path(__file__).resolve().parents[3]


def resolve(reference: str) -> str:
    """The digest (`sha256:…`) of the manifest `reference` names in its registry now; a
    `BurrowError` naming the reference when docker cannot tell."""
    try:
        inspected = subprocess.run(
            ["docker", "buildx", "imagetools", "inspect", reference, "--format", "{{json .Manifest}}"],
            check=True,
            capture_output=True,
            text=True,
        )
    except FileNotFoundError:
        raise BurrowError(f"make release: cannot resolve {reference}: docker (with buildx) is not installed") from None
    except subprocess.CalledProcessError as exc:
        said = " / ".join(line.strip() for line in (exc.stderr or "").splitlines() if line.strip())
        raise BurrowError(f"make release: cannot resolve {reference}: docker buildx imagetools inspect exited "
                          f"{exc.returncode}: {said or 'no message'}") from None
    return json.loads(inspected.stdout)["digest"]


def record(registry: str, tag: str, out: Path, environments: Path = ROOT / "environments") -> Release:
    """Resolve `<registry>/burrow/<service>:<tag>` (after push) and every environment's third-party
    images to digests and write the release."""
    images = {
        service: ReleasedImage(registry=registry, repository=f"burrow/{service}",
                               digest=resolve(f"{registry}/burrow/{service}:{tag}"))
        for service in SERVICES
    }
    wanted = sorted({ref for env in load_environments(environments, None) for ref in third_party_images(env)})
    release = Release(images=images, third_party={ref: resolve(ref) for ref in wanted})
    out.write_text(release.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return release


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "record":
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    try:
        print(record(sys.argv[2], sys.argv[3], Path(sys.argv[4])).model_dump_json(indent=2))
    except BurrowError as exc:
        print(exc, file=sys.stderr)
        sys.exit(2)
