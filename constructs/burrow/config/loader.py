"""Load environments: `default.yaml` deep-merged with `<name>.yaml`, then validated.

Every mistake becomes one `ConfigError` whose message names the file, the key
path, the bad value and what is allowed, before anything is synthesized.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from burrow.config.checks import deployability_problems, environments_problems, region_problems, regional_problems
from burrow.config.schema import ENVIRONMENT_NAME, EnvironmentConfig
from burrow.errors import ConfigError
from burrow.merge import deep_merge

DEFAULTS_FILE = "default.yaml"
_INJECTED_KEYS = ("name",)


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping (an empty file is an empty mapping)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}:{where}: not valid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, not {type(data).__name__}")
    return data


def environment_names(env_dir: Path) -> list[str]:
    """The environments defined in `env_dir`: every `<name>.yaml` beside `default.yaml`, sorted."""
    if not env_dir.is_dir():
        raise ConfigError(f"{env_dir}: environments folder not found")
    return sorted(p.stem for p in env_dir.glob("*.yaml") if p.name != DEFAULTS_FILE)


_MISSING = object()


def _step(data: Any, part: Any) -> Any:
    """`data[part]` for a mapping key or a list index, else `_MISSING`."""
    if isinstance(data, Mapping) and part in data:
        return data[part]
    if isinstance(data, list) and str(part).isdigit() and int(part) < len(data):
        return data[int(part)]
    return _MISSING


def _value_at(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        data = _step(data, part)
        if data is _MISSING:
            return "<missing>"
    return data


def _has_path(data: Any, loc: tuple[Any, ...]) -> bool:
    """True when `loc` (keys and list indices) exists in `data`; lists replace whole in the merge,
    so an item of a list the file sets came from that file."""
    return _value_at(data, loc) != "<missing>"


def _describe(error: Mapping[str, Any]) -> tuple[tuple[Any, ...], str]:
    loc = tuple(error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (check the spelling; unknown keys are never ignored)"
    elif error["type"] == "missing":
        message = "required key is missing"
    return loc, message


def format_validation_error(
    exc: ValidationError, merged: Mapping[str, Any], override: Mapping[str, Any], files: tuple[Path, Path]
) -> str:
    """One line per problem: file, key path, bad value, what is allowed."""
    defaults_file, env_file = files
    lines = []
    for error in exc.errors():
        loc, message = _describe(error)
        key = ".".join(str(p) for p in loc) or "<top level>"
        source = env_file if error["type"] == "missing" or _has_path(override, loc) else defaults_file
        value = _value_at(merged, loc)
        shown = "" if error["type"] == "missing" or not loc else f" = {value!r}"
        lines.append(f"{source}: {key}{shown}: {message}")
    return "\n".join(lines)


def load_environment(name: str, env_dir: Path) -> EnvironmentConfig:
    """Load and validate one environment. Raises `ConfigError` with a readable message."""
    if not ENVIRONMENT_NAME.match(name):
        raise ConfigError(
            f"environment name {name!r} is invalid: use 2-12 lowercase letters and digits, starting with a letter"
        )
    env_file = env_dir / f"{name}.yaml"
    defaults_file = env_dir / DEFAULTS_FILE
    if not env_file.exists():
        known = ", ".join(environment_names(env_dir)) or "none"
        raise ConfigError(f"{env_file}: file not found; known environments: {known}")
    defaults = read_yaml_mapping(defaults_file)
    override = read_yaml_mapping(env_file)
    for key in _INJECTED_KEYS:
        for source, data in ((defaults_file, defaults), (env_file, override)):
            if key in data:
                raise ConfigError(f"{source}: {key}: not allowed here; it comes from the file name")
    merged = deep_merge(defaults, override)
    merged["name"] = name
    merged.setdefault("namespace", f"burrow-{name}")
    try:
        env = EnvironmentConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, merged, override, (defaults_file, env_file))) from None
    def source_of(key: tuple[str, ...], value: object) -> Path:
        # a problem inside a region entry comes from the file that lists the regions
        found = _has_path(override, key[:2] if key[0] == "regions" else key)
        return env_file if found or value is None or value == [] else defaults_file

    problems = deployability_problems(env) + region_problems(env)
    if not problems and env.regions:
        problems = regional_checks(env, merged)
    if problems:
        raise ConfigError(
            "\n".join(f"{source_of(key, value)}: {'.'.join(key)} = {value!r}: {message}"
                      for key, value, message in problems)
        )
    return env


def regional_checks(env: EnvironmentConfig, merged: Mapping[str, Any]) -> list:
    """Validate every region's view of `env` (its overrides merged in), reporting a problem inside an
    override at `regions.<i>.<key>`; then the checks between regions (overlapping networks)."""
    regional, problems = [], []
    for index, region in enumerate(env.regions):
        prefix = ("regions", str(index))
        data = deep_merge(merged, region.overrides)
        data["aws"] = {**data.get("aws", {}), "region": region.name}
        try:
            view = EnvironmentConfig.model_validate(data)
        except ValidationError as exc:
            for error in exc.errors():
                loc, message = _describe(error)
                key = (*prefix, *map(str, loc)) if _has_path(region.overrides, loc) else tuple(map(str, loc))
                problems.append((key, _value_at(data, loc), f"in region {region.name}: {message}"))
            continue
        problems += [((*prefix, *key) if _has_path(region.overrides, key) else key, value,
                      f"in region {region.name}: {message}") for key, value, message in deployability_problems(view)]
        regional.append(view)
    if problems:
        return problems
    return regional_problems(regional)


def load_environments(env_dir: Path, names: list[str] | None = None) -> list[EnvironmentConfig]:
    """Load `names` (default: every environment in `env_dir`), reporting all broken files at once."""
    chosen = names if names else environment_names(env_dir)
    configs, problems = [], []
    for name in chosen:
        try:
            configs.append(load_environment(name, env_dir))
        except ConfigError as exc:
            problems.append(str(exc))
    # Problems between environments are checked against every environment in the folder, even
    # when only some are asked for (one whose own file is broken is reported when it is asked for).
    others = []
    for name in sorted(set(environment_names(env_dir)) - set(chosen)):
        with contextlib.suppress(ConfigError):
            others.append(load_environment(name, env_dir))
    problems += [f"{env_dir}: {problem}" for problem in environments_problems([*configs, *others])]
    if problems:
        raise ConfigError("\n".join(problems))
    return configs
