"""Typed construct props, and the one place a pydantic validation error becomes a `PropsError`.

A construct takes its props as the typed model or as a plain mapping. A mapping is validated in
the constructor (`props_for`), so a mistake names the construct path; a model built beforehand
(a `Props` subclass) reports the same one line, naming the props class instead. Either way the
user reads `<where>: <field>=<value> is invalid: <what is allowed>`, never pydantic's
multi-line report or a traceback through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from burrow.errors import PropsError
from burrow.props_errors import MISSING, TOGETHER, OneLineModel, props_error  # noqa: F401 - public here too
from constructs import Construct

P = TypeVar("P", bound=BaseModel)
T = TypeVar("T")


def child_path(scope: Construct, id: str) -> str:
    """The path construct `id` will have under `scope`: validating props before the construct joins
    the tree leaves no half-built construct behind when they are refused."""
    return f"{scope.node.path}/{id}" if scope.node.path else id


def props_for(path: str, model: type[P], props: P | Mapping[str, Any]) -> P:
    """`props` as a `model`: a model is taken as it is, a mapping is validated and any mistake
    raised as a `PropsError` naming the construct at `path`."""
    if isinstance(props, model):
        return props
    try:
        return model.model_validate(props)
    except ValidationError as exc:
        raise props_error(path, exc, model) from None
    except PropsError as exc:  # a `Props` model's own model_validate names its class: name the path instead
        raise PropsError(path, exc.field, exc.value, exc.allowed) from None


def reference(path: str, argument: str, value: object, kind: type[T]) -> T:
    """`value` if it is a `kind`: the constructs a construct builds on travel beside its props, as
    keyword arguments, and a wrong object is one `PropsError` naming the construct at `path` and the
    argument."""
    if not isinstance(value, kind):
        raise PropsError(
            path, argument, value, f"{argument} takes a construct of type {kind.__name__}, not {type(value).__name__}"
        )
    return value


class Props(OneLineModel):
    """Base of construct props: immutable, no unknown fields, and building one with a bad value
    raises a one-line `PropsError` naming the props class, the field, the value and what is allowed.
    (The settings types props hold, such as `Image`, derive from `burrow.settings.Model` instead.)"""

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Any:
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as exc:
            raise props_error(cls.__name__, exc, cls) from None
