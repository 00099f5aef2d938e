"""Helm release names are unique per namespace: checked over every `helm_release` of a stack at synth.

Two `helm_release`s with one name in one namespace of one cluster plan without complaint; the
second apply then fails ("cannot re-use a name that is still in use"). Every release counts,
whichever construct (or raw cdktf resource) made it, and names are read at synth, after every
escape-hatch edit.
"""

from __future__ import annotations

from collections.abc import Iterable

import jsii
from cdktf import TerraformStack
from cdktf_cdktf_provider_helm.release import Release

from burrow.errors import PropsError
from burrow.synthesized import resource_attributes
from constructs import IValidation

DEFAULT_NAMESPACE = "default"  # where the helm provider installs a release that names no namespace


def release_name_clash(stack: TerraformStack) -> PropsError | None:
    """The first release in `stack` whose name another release of the same cluster (provider)
    already uses in its namespace, as an error naming both; None when every name is unique."""
    seen: dict[tuple[str, str, str], str] = {}
    for node in stack.node.find_all():
        if not isinstance(node, Release):
            continue
        attributes = resource_attributes(node)  # as synthesized: escape-hatch overrides included
        name, namespace = attributes.get("name"), attributes.get("namespace") or DEFAULT_NAMESPACE
        if not isinstance(name, str) or not isinstance(namespace, str) or "${" in name + namespace:
            continue  # a name only known at apply cannot be compared here
        provider = node.provider.node.path if node.provider is not None else ""
        first = seen.setdefault((provider, namespace, name), node.node.path)
        if first != node.node.path:
            return PropsError(
                node.node.path,
                "name",
                name,
                f"{first} already releases {name!r} in namespace {namespace}; release names are unique per "
                "namespace, so give one of them another name",
            )
    return None


def check_release_names(stacks: Iterable[TerraformStack]) -> None:
    """Raise the first clash of release names in `stacks` (each stack on its own)."""
    for stack in stacks:
        clash = release_name_clash(stack)
        if clash is not None:
            raise clash


@jsii.implements(IValidation)
class _UniqueReleaseNames:
    def __init__(self, stack: TerraformStack) -> None:
        self._stack = stack

    def validate(self) -> list[str]:
        clash = release_name_clash(self._stack)
        return [] if clash is None else [str(clash)]


def check_release_names_at_synth(stack: TerraformStack) -> None:
    """Have a plain `app.synth()` refuse `stack` when two of its releases share a name in a namespace
    (`burrow.synthesize` checks first and reports the one line without cdktf's stack trace)."""
    if not getattr(stack, "_burrow_release_names", False):
        stack._burrow_release_names = True  # noqa: SLF001 - one well-known attribute per stack
        stack.node.add_validation(_UniqueReleaseNames(stack))
