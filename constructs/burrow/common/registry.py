"""`ContainerRegistry`: an ECR repository per Burrow image, immutable and scanned."""

from __future__ import annotations

import json

from cdktf_cdktf_provider_aws.ecr_lifecycle_policy import EcrLifecyclePolicy
from cdktf_cdktf_provider_aws.ecr_repository import (
    EcrRepository,
    EcrRepositoryEncryptionConfiguration,
    EcrRepositoryImageScanningConfiguration,
)

from constructs import Construct


def keep_last_policy(count: int) -> str:
    """An ECR lifecycle policy that expires all but the newest `count` images."""
    rule = {
        "rulePriority": 1,
        "description": f"keep the newest {count} images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": count},
        "action": {"type": "expire"},
    }
    return json.dumps({"rules": [rule]}, indent=2)


class ContainerRegistry(Construct):
    """One ECR repository: tags are immutable (a digest is promoted, never overwritten), images are
    scanned on push and encrypted with KMS, and old images expire.

    Escape hatch: `repository`.
    """

    def __init__(self, scope: Construct, id: str, *, name: str, keep_images: int = 30) -> None:
        super().__init__(scope, id)
        self.repository = EcrRepository(
            self,
            "repository",
            name=name,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=EcrRepositoryImageScanningConfiguration(scan_on_push=True),
            encryption_configuration=[EcrRepositoryEncryptionConfiguration(encryption_type="KMS")],
        )
        EcrLifecyclePolicy(self, "lifecycle", repository=self.repository.name, policy=keep_last_policy(keep_images))

    @property
    def url(self) -> str:
        return self.repository.repository_url
