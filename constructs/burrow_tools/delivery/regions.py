"""An environment's regions and the stacks of each, for region-by-region rollouts.

    python -m burrow_tools.delivery.regions regions <env>          # primary first, one per line
    python -m burrow_tools.delivery.regions stacks <env> <region>  # that region's stacks, deploy order

`make deploy ENV=prod REGION=us-east-1` deploys exactly the stacks this prints. The primary
region's list has `<env>-global` (the zone and health checks every region relies on) right after
its common layer, which creates the bucket holding every stack's state.
Answers come from the configuration alone (no synthesis), and a mistake is one line, exit 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

from burrow.config.loader import load_environment
from burrow.config.schema import EnvironmentConfig
from burrow.errors import BurrowError

ROOT = Path(__file__).resolve().parents[3]


def region_stacks(env: EnvironmentConfig, region: str) -> list[str]:
    """The stacks of `region` in `env`, in deploy order (`BurrowError` for a region it does not have)."""
    view = env.in_region(region)
    layers = ("common", "cluster", "addons") if env.on_aws else ("addons",)
    stacks = [f"{view.stack_prefix}-{layer}" for layer in layers]
    if view.is_primary and env.on_aws and env.ingress.enabled:
        stacks.insert(1, f"{env.name}-global")  # after the common layer: its bucket holds global's state
    if view.delivery == "terraform":
        stacks.append(f"{view.stack_prefix}-app")
    return stacks


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or argv[0] not in ("regions", "stacks") or (argv[0] == "stacks") != (len(argv) == 3):
        print("usage: python -m burrow_tools.delivery.regions regions <env> | stacks <env> <region>", file=sys.stderr)
        return 2
    try:
        env = load_environment(argv[1], ROOT / "environments")
        print("\n".join(env.region_names if argv[0] == "regions" else region_stacks(env, argv[2])))
    except BurrowError as exc:
        print(f"burrow: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
