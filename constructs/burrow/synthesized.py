"""A provider resource as Terraform will receive it: what the guardrails and the release-name check read."""

from __future__ import annotations

from typing import Any

from cdktf import DefaultTokenResolver, StringConcat, TerraformResource, TerraformStack, Tokenization


def resource_attributes(resource: TerraformResource) -> dict[str, Any]:
    """The resource's attributes as synthesized (escape-hatch overrides included, tokens resolved)."""
    resolved = Tokenization.resolve(
        resource.to_terraform(),
        scope=TerraformStack.of(resource),
        preparing=False,
        resolver=DefaultTokenResolver(StringConcat()),
    )
    (attributes,) = resolved["resource"][resource.terraform_resource_type].values()
    return attributes
