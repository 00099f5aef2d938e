"""Kubernetes objects in native shape, their delivery as Helm releases, and offline checks."""
