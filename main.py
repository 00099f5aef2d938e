#!/usr/bin/env python
"""The cdktf app: every environment in environments/, or those in BURROW_ENV (e.g. BURROW_ENV=prod).

It only wires configuration to Burrow's stacks; all resource logic lives in constructs/burrow.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "constructs"))

from burrow.synth import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(ROOT))
