"""Errors Burrow raises for a user's mistake.

They carry a complete sentence for the user; the command-line entry points print
that sentence and exit non-zero instead of showing a traceback.
"""

from __future__ import annotations


class BurrowError(Exception):
    """Base class for every error that is the user's to fix, not a bug in Burrow."""


class ConfigError(BurrowError):
    """An environment file (or a values file it points at) is missing or invalid."""


class PropsError(BurrowError):
    """A construct was given props that cannot work; raised in its constructor."""

    def __init__(self, path: str, field: str, value: object, allowed: str) -> None:
        self.path = path
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{path}: {field}={value!r} is invalid: {allowed}")


def _one_line(previous):
    """An excepthook: a `BurrowError` nobody caught (a bad prop in a team's own `main.py`) ends the
    program with Burrow's one line and status 2; anything else goes to `previous` unchanged."""

    def hook(kind, error, traceback) -> None:
        if isinstance(error, BurrowError):
            import sys  # noqa: PLC0415

            print(f"burrow: {error}", file=sys.stderr)
            sys.stderr.flush()
            raise SystemExit(2)
        previous(kind, error, traceback)

    hook.burrow = True  # type: ignore[attr-defined]
    return hook


def install_excepthook() -> None:
    """Make an uncaught `BurrowError` one line instead of a traceback (once; other errors unchanged)."""
    import sys  # noqa: PLC0415

    if not getattr(sys.excepthook, "burrow", False):
        sys.excepthook = _one_line(sys.excepthook)
