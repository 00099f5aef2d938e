"""`make new-env NAME=<name> ACCOUNT=<aws account id>`: create environments/<name>.yaml from the
template, then validate it with every environment of the folder (names AWS keeps unique per
account must stay unique). In an account where another environment already creates the image
repositories, the new one uses them (`registry.create: false`)."""

from __future__ import annotations

import sys
from pathlib import Path

from burrow.config.loader import environment_names, load_environment, load_environments
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
    text = (env_dir / TEMPLATE).read_text(encoding="utf-8").replace("{name}", name).replace("{account}", account)
    target.write_text(text, encoding="utf-8")
    try:
        env = load_environment(name, env_dir)
        owner = registry_owner(env_dir, name, account, env.primary_region) if env.registry.create else None
        if owner:
            target.write_text(f"{text.rstrip()}\nregistry:\n  create: false  # environment {owner} creates the "
                              "repositories in this account and region\n", encoding="utf-8")
        load_environments(env_dir, [name])
    except ConfigError:
        target.unlink()
        raise
    return target


def registry_owner(env_dir: Path, name: str, account: str, region: str) -> str | None:
    """The environment (other than `name`) that creates the image repositories in `account`/`region`."""
    for other in environment_names(env_dir):
        if other == name:
            continue
        try:
            env = load_environment(other, env_dir)
        except ConfigError:
            continue  # a broken file is reported by the validation that follows
        if env.on_aws and env.aws.account_id == account and env.primary_region == region and env.registry.create:
            return other
    return None


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or not argv[1]:
        print("usage: make new-env NAME=<environment> ACCOUNT=<12-digit AWS account id>", file=sys.stderr)
        return 2
    try:
        path = scaffold(argv[0], argv[1], Path(argv[2] if len(argv) == 3 else "environments"))
    except ConfigError as exc:
        print(f"burrow: {exc}", file=sys.stderr)
        return 2
    print(f"created {path}; `make synth ENV={argv[0]}` synthesizes it")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
