#!/usr/bin/env python
"""The cdktf app: every environment in environments/, or those in BURROW_ENV (e.g. BURROW_ENV=prod).

It only wires configuration to Burrow's stacks; all resource logic lives in constructs/burrow.
"""

import os
import sys
from pathlib import Path

# jsii prints a banner about Node 20 on every run; Burrow states its Node requirement in the README.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "constructs"))

from burrow.synth import main  # noqa: E402
from burrow_tools.delivery.deploy_path import deploy_path_check  # noqa: E402

if __name__ == "__main__":
    # The repository's own check: every deploy job can reach its environment's cluster API.
    sys.exit(main(ROOT, checks=[deploy_path_check(ROOT)]))
