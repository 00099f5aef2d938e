"""Read a third-party chart's values files: `values-default.yaml`, then `values-<env>.yaml` if present."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from burrow.config.loader import read_yaml_mapping
from burrow.errors import ConfigError


def chart_values(chart_dir: Path, env_name: str, managed: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The values documents for one environment, in merge order.

    A document may not set a `managed` top-level key: those come from the typed
    environment configuration, so each setting has one home.
    """
    default = chart_dir / "values-default.yaml"
    files = [default, chart_dir / f"values-{env_name}.yaml"]
    docs = []
    for path in files:
        if path != default and not path.exists():
            continue
        doc = read_yaml_mapping(path)
        for key in managed:
            if key in doc:
                raise ConfigError(
                    f"{path}: {key}: set by Burrow from the environment configuration "
                    f"(environments/*.yaml), not in chart values"
                )
        docs.append(doc)
    return docs
