"""`make rotate-token ENV=<env>`: a new bearer token for the public producer, the old one kept
valid until the next rotation.

The environment's token secret (`burrow/<env>/producer`, in its primary region, replicated by
Secrets Manager to the other regions) holds two fields, both accepted by the producer:
`publish_token` (current) and `previous_publish_token`. A rotation writes a new secret version
with a fresh current token (Secrets Manager's own generator) and the old current one as previous.
External Secrets copies it into the `producer-auth` Secret within its refresh interval, the
kubelet updates the mounted files, and the producer re-reads them without a restart. Clients
move to the new token before the next rotation, which retires the one they used.

The values never pass through a command line, a log or Terraform: they travel between the `aws`
calls through pipes only (`--secret-string file:///dev/stdin`). Terraform does not notice a new
version (the value is write-only there); raising `generation` regenerates both fields instead.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from burrow.config.loader import load_environment
from burrow.errors import ConfigError

TOKEN_LENGTH = 48


def secret_id(env: str) -> str:
    return f"burrow/{env}/producer"


def commands(env: str, region: str) -> list[list[str]]:
    """The three `aws` calls of a rotation: read the secret, generate a token, write the new version."""
    where = ["--secret-id", secret_id(env), "--region", region]
    return [
        ["aws", "secretsmanager", "get-secret-value", *where, "--query", "SecretString", "--output", "text"],
        [
            "aws",
            "secretsmanager",
            "get-random-password",
            "--password-length",
            str(TOKEN_LENGTH),
            "--exclude-punctuation",
            "--region",
            region,
            "--query",
            "RandomPassword",
            "--output",
            "text",
        ],
        ["aws", "secretsmanager", "put-secret-value", *where, "--secret-string", "file:///dev/stdin"],
    ]


def run(command: Sequence[str], stdin: str | None = None) -> str:
    result = subprocess.run(list(command), input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        # aws prints no secret value in its errors; its stderr says what is wrong (credentials, name)
        raise RuntimeError(f"{' '.join(command[:3])} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout.strip()


def rotate(env: str, region: str) -> None:
    read, generate, write = commands(env, region)
    current = json.loads(run(read))["publish_token"]
    new = run(generate)
    run(write, stdin=json.dumps({"publish_token": new, "previous_publish_token": current}))


def main(argv: list[str], env_dir: Path = Path("environments")) -> int:
    parser = argparse.ArgumentParser(prog="rotate-token")
    parser.add_argument("env")
    parser.add_argument("--dry-run", action="store_true", help="print the aws calls, run nothing")
    args = parser.parse_args(argv)
    try:
        config = load_environment(args.env, env_dir)
    except ConfigError as exc:
        print(f"make rotate-token: {exc}", file=sys.stderr)
        return 2
    if not (config.ingress.enabled and config.ingress.authentication == "token"):
        print(
            f"make rotate-token: {args.env} has no public producer with a token (ingress.enabled and "
            "ingress.authentication: token); nothing to rotate",
            file=sys.stderr,
        )
        return 2
    region = config.aws.region
    for command in commands(args.env, region):
        print("  " + " ".join(command))
    if args.dry_run:
        return 0
    try:
        rotate(args.env, region)
    except (RuntimeError, KeyError, ValueError, OSError) as exc:
        print(f"make rotate-token: {exc}", file=sys.stderr)
        return 1
    print(
        f"rotated {secret_id(args.env)} in {region} (replicas follow); the previous token stays valid until "
        f"the next rotation. The producers accept the new one within External Secrets' refresh (1h), or at once "
        f"after: kubectl -n burrow-{args.env} annotate externalsecret producer-auth force-sync=$(date +%s) --overwrite"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
