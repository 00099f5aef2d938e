"""Burrow's own project tooling, called through `make`: Terraform validation and the emulator
rehearsal, plan review (`make diff`), chart verification, the delivery helpers and scaffolding.

It sits beside the `burrow` library and is not part of what `pip install` ships.
"""

import os

# jsii prints a banner about Node 20 whenever a tool loads the constructs; the README states the Node requirement.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
