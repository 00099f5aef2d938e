"""`synthesize(app)`: `app.synth()` for any cdktf app of Burrow's constructs, with Burrow's guardrail
report instead of a stack trace when the guardrails refuse a stack."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cdktf import App, TerraformStack


def stacks_of(app: App) -> list[TerraformStack]:
    from cdktf import TerraformStack  # noqa: PLC0415

    return [child for child in app.node.children if isinstance(child, TerraformStack)]


def synthesize(app: App) -> None:
    """`app.synth()` for stacks that use Burrow's constructs.

    When Burrow's guardrails refuse a stack, this prints Burrow's report on stderr (one line
    per violation, with the rule and what to change) and exits with status 2, instead of the
    jsii error with a Node.js stack trace that `app.synth()` raises. Anything else is raised
    unchanged.
    """
    from burrow.policy.guardrails import guardrail_report, violations_in  # noqa: PLC0415 - loads cdktf

    try:
        app.synth()
    except Exception:
        found = violations_in(stacks_of(app))
        if not found:
            raise
        print(f"burrow: {guardrail_report(found)}", file=sys.stderr)
        raise SystemExit(2) from None
