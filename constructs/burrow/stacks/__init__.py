"""Whole layers (L3): one Terraform stack per environment and layer."""
