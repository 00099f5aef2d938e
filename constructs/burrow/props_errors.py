"""Pydantic's validation errors as Burrow's one-line `PropsError`: for construct props
(`burrow.props`) and for the settings types a team may build itself (`burrow.settings`).
Needs pydantic only, so the configuration can use it without loading cdktf."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

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


class OneLineModel(BaseModel):
    """Immutable, no unknown fields; built with a bad value, it raises a one-line `PropsError` naming
    the model, the field, the value and what is allowed (base of construct props and of the
    configuration models)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise props_error(type(self).__name__, exc, type(self)) from None

    # Nested in another model, it is validated by pydantic itself (not through this __init__), so a
    # mistake in it keeps its full location (`messaging.exchange`).
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]
