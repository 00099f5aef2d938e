"""Guardrail rules that mutation testing (`make mutation`) found untested, each stated as a rule."""
