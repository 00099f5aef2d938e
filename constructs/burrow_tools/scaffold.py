"""`make new-env NAME=<name> ACCOUNT=<aws account id>`: create environments/<name>.yaml from the
template, then validate it."""

from __future__ import annotations

import sys
from pathlib import Path

from burrow.config.loader import load_environment
from burrow.config.schema import ENVIRONMENT_NAME
from burrow.errors import ConfigError

TEMPLATE = Path("templates") / "environment.yaml.tmpl"


def scaffold(name: str, account: str, env_dir: Path) -> Path:
    """Write `<env_dir>/<name>.yaml` from the template for AWS account `account`; refuse a bad name,
    a bad account id (the validation names it) or an existing file."""
    if not ENVIRONMENT_NAME.match(name):
        raise ConfigError(
            f"environment name {name!r} is invalid: use 2-12 lowercase letters and digits, starting with a letter"
        )
    target = env_dir / f"{name}.yaml"
    if target.exists():
        raise ConfigError(f"{target}: already exists; edit it instead")
    target.write_text((env_dir / TEMPLATE).read_text(encoding="utf-8").replace("{name}", name).replace("{account}", account),
                      encoding="utf-8")
    try:
        load_environment(name, env_dir)
    except ConfigError:
        target.unlink()
        raise
    return target


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not argv[1]:
        print("usage: make new-env NAME=<environment> ACCOUNT=<12-digit AWS account id>", file=sys.stderr)
        return 2
    try:
        path = scaffold(argv[0], argv[1], Path("environments"))
    except ConfigError as exc:
        print(f"burrow: {exc}", file=sys.stderr)
        return 2
    print(f"created {path}; `make synth ENV={argv[0]}` synthesizes it")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
