"""Preview environments' life cycle outside Terraform (see `burrow.previews`).

- `summary <pr>`: the PR comment (markdown) after a deploy: stack, namespace, cluster, images, expiry.
- `forget <pr>`: after `cdktf destroy pr-<n>-app`, delete every version of the preview's state
  object and its lock file from the host's state bucket, so nothing of the preview is left.
- `expired`: the PR numbers of previews past their expiry, read from the namespaces' labels
  in the host's cluster (`kubectl get namespaces -l burrow.dev/preview=true -o json`).

Options: `--host <env>` (default: the one environment with previews.enabled). `BURROW_AWS_ENDPOINT`
points `forget` at an AWS API emulator (the tests).
Usage: python -m burrow_tools.delivery.previews {summary|forget|expired} [pr] [--host ENV]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from burrow.config.loader import load_environments
from burrow.config.release import RELEASE_VARIABLE, load_release
from burrow.config.schema import EnvironmentConfig
from burrow.errors import BurrowError
from burrow.previews import (
    EXPIRY_FORMAT,
    LABEL_EXPIRES,
    LABEL_PR,
    LABEL_PREVIEW,
    PreviewRequest,
    parse_pr,
    preview_config,
    preview_host,
    request_from_environment,
)

ROOT = Path(__file__).resolve().parents[3]


def host_of(name: str | None) -> EnvironmentConfig:
    return preview_host(load_environments(ROOT / "environments"), name)


def state_key(host: EnvironmentConfig, pr: int) -> str:
    return f"{host.name}/previews/pr-{pr}.tfstate"


def summary(host: EnvironmentConfig, request: PreviewRequest, release_file: str | None) -> str:
    config = preview_config(host, request)
    if release_file:
        images = {name: f"{i.registry}/{i.repository}@{i.digest}" for name, i in load_release(Path(release_file)).images.items()}
    else:
        images = {role: getattr(config.apps, role).image.reference for role in ("producer", "consumer")}
    lines = [
        f"### Preview of pull request #{request.pr}",
        "",
        "| | |",
        "|---|---|",
        f"| stack | `{request.stack_name}` (state `{state_key(host, request.pr)}`) |",
        f"| cluster | `burrow-{host.name}` ({host.aws.region}) |",
        f"| namespace | `{request.namespace}` |",
        *(f"| {role} | `{image}` |" for role, image in sorted(images.items())),
        f"| commit | `{request.commit or 'unknown'}` |",
        f"| expires | {request.expires_at(host.previews.ttl_hours).isoformat()} |",
        "",
        f"`kubectl -n {request.namespace} get pods`; removed when the PR closes or expires "
        f"(`make preview-destroy PR={request.pr}`).",
    ]
    return "\n".join(lines) + "\n"


def forget(host: EnvironmentConfig, pr: int) -> list[str]:
    """Delete every version (and delete marker) of the preview's state and lock objects."""
    import boto3  # noqa: PLC0415

    endpoint = os.environ.get("BURROW_AWS_ENDPOINT") or None
    s3 = boto3.client("s3", region_name=host.aws.region, endpoint_url=endpoint)
    key = state_key(host, pr)
    removed = []
    for name in (key, f"{key}.tflock"):
        listing = s3.list_object_versions(Bucket=host.state.bucket, Prefix=name)
        for entry in listing.get("Versions", []) + listing.get("DeleteMarkers", []):
            if entry["Key"] == name:
                s3.delete_object(Bucket=host.state.bucket, Key=name, VersionId=entry["VersionId"])
                removed.append(f"s3://{host.state.bucket}/{name}@{entry['VersionId']}")
    return removed


def expired_previews(namespaces: dict, now: datetime) -> list[int]:
    """PR numbers of preview namespaces whose `burrow.dev/expires-at` label is before `now`."""
    found = []
    for item in namespaces.get("items", []):
        labels = item.get("metadata", {}).get("labels", {})
        if labels.get(LABEL_PREVIEW) != "true" or LABEL_EXPIRES not in labels or LABEL_PR not in labels:
            continue
        expires = datetime.strptime(labels[LABEL_EXPIRES], EXPIRY_FORMAT).replace(tzinfo=UTC)
        if expires <= now:
            found.append(int(labels[LABEL_PR]))
    return sorted(found)


def cluster_namespaces(host: EnvironmentConfig) -> dict:
    cluster = f"burrow-{host.name}"
    subprocess.run(["aws", "eks", "update-kubeconfig", "--name", cluster, "--region", host.aws.region, "--alias", cluster],
                   check=True, capture_output=True)
    listing = subprocess.run(["kubectl", "--context", cluster, "get", "namespaces", "-l", f"{LABEL_PREVIEW}=true",
                              "-o", "json"], check=True, capture_output=True, text=True)
    return json.loads(listing.stdout)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="previews")
    parser.add_argument("command", choices=("summary", "forget", "expired"))
    parser.add_argument("pr", nargs="?")
    parser.add_argument("--host", default=None)
    args = parser.parse_args(argv)
    try:
        host = host_of(args.host or None)
        if args.command == "expired":
            for pr in expired_previews(cluster_namespaces(host), datetime.now(UTC)):
                print(pr)
            return 0
        pr = parse_pr(args.pr or "")
        if args.command == "forget":
            removed = forget(host, pr)
            print(f"previews: removed {len(removed)} state object versions of pr-{pr}" + "".join(f"\n  {r}" for r in removed))
            return 0
        request = request_from_environment({**os.environ, "BURROW_PREVIEW": str(pr)})
        assert request is not None
        print(summary(host, request, os.environ.get(RELEASE_VARIABLE) or None), end="")
        return 0
    except BurrowError as exc:
        print(f"previews: {exc}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as exc:  # aws or kubectl refused: say which and what it printed
        said = (exc.stderr or "").strip() if isinstance(exc.stderr, str) else (exc.stderr or b"").decode().strip()
        print(f"previews: FAILED: {' '.join(exc.cmd[:3])} … exited with {exc.returncode}: {said}", file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(f"previews: FAILED: {exc.filename} is not installed (the expiry sweep needs the aws CLI and kubectl)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
