"""Pydantic's validation errors as Burrow's one-line `PropsError`: for construct props
(`burrow.props`) and for the typed configuration models a team may build itself (`burrow.config.schema`).
Needs pydantic only, so the configuration can use it without loading cdktf."""

from __future__ import annotations

from pydantic import BaseModel, ValidationError

from burrow.errors import PropsError


class _Shown:
    """A value shown as its text in an error (for what is no value of the user's)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


MISSING = _Shown("(missing)")
TOGETHER = _Shown("(the props together)")  # a check across fields (a model validator)


def props_error(where: str, error: ValidationError, model: type[BaseModel]) -> PropsError:
    """The first problem pydantic found, as Burrow's one-line error (with how many more there are)."""
    problems = error.errors(include_url=False)
    first = problems[0]
    field = ".".join(str(part) for part in first["loc"]) or "props"
    value: object = MISSING if first["type"] == "missing" else first.get("input") if first["loc"] else TOGETHER
    allowed = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden" and len(first["loc"]) == 1:
        allowed = f"unknown field; the fields of {model.__name__} are {', '.join(model.model_fields)}"
    elif first["type"] == "missing":
        allowed = "required, and not set"
    if len(problems) > 1:
        allowed += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
    return PropsError(where, field, value, allowed)
