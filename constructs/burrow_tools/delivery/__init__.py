"""Delivery helpers the pipeline calls through make: changed environments, PR comments, releases."""
