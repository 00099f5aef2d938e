"""Environment configuration: YAML files validated by a typed schema."""

from burrow.config.loader import environment_names, load_environment, load_environments
from burrow.config.schema import EnvironmentConfig, Image, Resources, Tier
from burrow.merge import deep_merge

__all__ = [
    "EnvironmentConfig",
    "Image",
    "Resources",
    "Tier",
    "deep_merge",
    "environment_names",
    "load_environment",
    "load_environments",
]
