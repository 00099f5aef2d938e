"""`synthesize(app)`: `app.synth()` for any cdktf app of Burrow's constructs, with Burrow's guardrail
report instead of a stack trace when the guardrails refuse a stack."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from burrow.errors import PropsError

if TYPE_CHECKING:
    from cdktf import App, TerraformStack


def stacks_of(app: App) -> list[TerraformStack]:
    from cdktf import TerraformStack  # noqa: PLC0415

    return [child for child in app.node.children if isinstance(child, TerraformStack)]


def synthesize(app: App) -> None:
    """`app.synth()` for stacks that use Burrow's constructs.

    When Burrow's guardrails refuse a stack, this prints Burrow's report on stderr (one line
    per violation, with the rule and what to change) and exits with status 2, instead of the
    jsii error with a Node.js stack trace that `app.synth()` raises. Two releases with one name in
    one namespace of a stack are refused the same way, with one line naming both, before anything is
    written. Anything else is raised unchanged.
    """
    from burrow.policy.guardrails import guardrail_report, violations_in  # noqa: PLC0415 - loads cdktf
    from burrow.release_names import check_release_names  # noqa: PLC0415 - loads cdktf

    try:
        check_release_names(stacks_of(app))
    except PropsError as exc:
        print(f"burrow: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        app.synth()
    except Exception:
        found = violations_in(stacks_of(app))
        if not found:
            raise
        print(f"burrow: {guardrail_report(found)}", file=sys.stderr)
        raise SystemExit(2) from None
