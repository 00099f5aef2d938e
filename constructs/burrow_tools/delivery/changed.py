"""Which environments a change touches: compare two synth outputs stack by stack.

Usage: python -m burrow_tools.delivery.changed <base cdktf.out> <head cdktf.out>   (prints one env per line)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def stacks(outdir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in (outdir / "stacks").glob("*/cdk.tf.json")}


def changed_environments(base: Path, head: Path) -> list[str]:
    """Environments with a stack added, removed or different between `base` and `head`."""
    before, after = stacks(base), stacks(head)
    changed = {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}
    return sorted({name.split("-", 1)[0] for name in changed})  # env names have no dash; regions add one


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        sys.exit(2)
    print("\n".join(changed_environments(Path(sys.argv[1]), Path(sys.argv[2]))))
