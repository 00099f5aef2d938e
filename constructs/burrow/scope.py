"""Helpers about where a construct lives."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from cdktf import TerraformStack

from constructs import Construct

T = TypeVar("T", bound=Construct)


def stack_singleton(scope: Construct, id: str, factory: Callable[[TerraformStack, str], T]) -> T:
    """The construct `id` directly under `scope`'s stack, made by `factory(stack, id)` the first time."""
    stack = TerraformStack.of(scope)
    existing = stack.node.try_find_child(id)
    return existing if existing is not None else factory(stack, id)
