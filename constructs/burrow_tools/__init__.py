"""Burrow's own project tooling, called through `make`: Terraform validation and the emulator
rehearsal, plan review (`make diff`), chart verification, the delivery helpers and scaffolding.

It sits beside the `burrow` library and is not part of what `pip install` ships.
"""
