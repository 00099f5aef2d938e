"""`synthesize(app)`: `app.synth()` for any cdktf app of Burrow's constructs, every stack under
guardrails, with Burrow's report instead of a stack trace when they (or a release-name clash) refuse a stack."""

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
    """`app.synth()` for stacks that use Burrow's constructs, with every stack under guardrails.

    Every stack of the app is policed (a stack that set no tier is held to `production`), so a
    `helm_release` or `kubernetes_manifest` a stack adds itself is checked like Burrow's own. The
    findings waivers let through are printed on stdout, one `WAIVED` line each with its reason.
    When the guardrails refuse a stack, this prints Burrow's report on stderr (one line per
    violation, with the rule and what to change) and exits with status 2, instead of the jsii
    error with a Node.js stack trace that `app.synth()` raises. Two releases with one name in one
    namespace of a stack are refused the same way, with one line naming both, before anything is
    written. Anything else is raised unchanged.
    """
    from burrow.policy.guardrails import Guardrails, refusal, waiver_report  # noqa: PLC0415 - loads cdktf
    from burrow.release_names import check_release_names  # noqa: PLC0415 - loads cdktf

    stacks = stacks_of(app)
    try:
        check_release_names(stacks)
    except PropsError as exc:
        print(f"burrow: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    for stack in stacks:
        Guardrails.of(stack)
    try:
        app.synth()
    except Exception:
        report = refusal(stacks)
        if report is None:
            raise
        print(f"burrow: {report}", file=sys.stderr)
        raise SystemExit(2) from None
    for line in waiver_report(stacks):
        print(line)
