"""Synth-time policy: guardrails per tier, applied as cdktf Aspects."""
