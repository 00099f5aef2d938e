"""Terraform tooling: provider mirror discovery, `make validate`, and the AWS emulator rehearsal."""
