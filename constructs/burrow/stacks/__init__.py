"""Whole layers (L3): one Terraform stack per environment and layer."""

#: The oldest Terraform that runs every stack: write-only arguments (`secret_string_wo` of the generated
#: credentials) arrived in Terraform 1.11, as did the S3 backend's lock files (`use_lockfile`) as a
#: stable feature; ephemeral resources (1.10) are older.
TERRAFORM_VERSION = ">= 1.11"
