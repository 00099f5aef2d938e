"""`ContainerRegistry`: an ECR repository per Burrow image, immutable and scanned."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cdktf_cdktf_provider_aws.ecr_lifecycle_policy import EcrLifecyclePolicy
from cdktf_cdktf_provider_aws.ecr_repository import (
    EcrRepository,
    EcrRepositoryEncryptionConfiguration,
    EcrRepositoryImageScanningConfiguration,
)
from pydantic import Field

from burrow.props import Props, child_path, props_for
from constructs import Construct

#: ECR's rule for a repository name: lowercase letters and digits, separated by `.`, `_`, `-` or
#: `/` (a namespace), 2 to 256 characters.
REPOSITORY_NAME = r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$"


def keep_last_policy(count: int) -> str:
    """An ECR lifecycle policy that expires all but the newest `count` images."""
    rule = {
        "rulePriority": 1,
        "description": f"keep the newest {count} images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": count},
        "action": {"type": "expire"},
    }
    return json.dumps({"rules": [rule]}, indent=2)


class ContainerRegistryProps(Props):
    """Props of `ContainerRegistry`. Required: `name`."""

    #: The repository's name, e.g. `burrow/producer`: lowercase letters and digits separated by
    #: `.`, `_`, `-` or `/`, 2 to 256 characters (ECR's rule).
    name: str = Field(min_length=2, max_length=256, pattern=REPOSITORY_NAME)
    #: How many images the repository keeps; older ones expire (a rollback can go back this many
    #: pushes). default: 30
    keep_images: int = Field(default=30, ge=1)


class ContainerRegistry(Construct):
    """One ECR repository: tags are immutable (a digest is promoted, never overwritten), images are
    scanned on push and encrypted with KMS, and old images expire.

    `props` is a `ContainerRegistryProps` or a mapping of its fields (validated here, so a mistake
    names this construct's path). Escape hatch: `repository`.
    """

    def __init__(self, scope: Construct, id: str, props: ContainerRegistryProps | Mapping[str, Any]) -> None:
        props = props_for(child_path(scope, id), ContainerRegistryProps, props)
        super().__init__(scope, id)
        self.props = props
        self.repository = EcrRepository(
            self,
            "repository",
            name=props.name,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=EcrRepositoryImageScanningConfiguration(scan_on_push=True),
            encryption_configuration=[EcrRepositoryEncryptionConfiguration(encryption_type="KMS")],
        )
        EcrLifecyclePolicy(
            self, "lifecycle", repository=self.repository.name, policy=keep_last_policy(props.keep_images)
        )

    @property
    def url(self) -> str:
        return self.repository.repository_url
