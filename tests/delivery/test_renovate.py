"""renovate.json: valid for Renovate, and its regex managers find every pin they are meant to update."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from burrow.config.loader import load_environment
from burrow.pins import PINS
from tests.support.services import ROOT

CONFIG_FILE = ROOT / "renovate.json"
CHECK_JSONSCHEMA = ROOT / ".venv-tools" / "bin" / "check-jsonschema"


@pytest.fixture(scope="module")
def config() -> dict:
    return json.loads(CONFIG_FILE.read_text())


def python_regex(pattern: str) -> re.Pattern:
    """Renovate's (JavaScript/RE2) named groups `(?<name>…)` in Python's spelling."""
    return re.compile(pattern.replace("(?<", "(?P<"))


def managers_for(config: dict, path: str) -> list[dict]:
    """The custom managers whose managerFilePatterns (`/regex/`) select `path`."""
    return [
        manager
        for manager in config["customManagers"]
        if any(re.search(pattern.strip("/"), path) for pattern in manager["managerFilePatterns"])
    ]


def extracted(config: dict, path: str) -> list[dict[str, str]]:
    """What the regex managers extract from the file at `path`, one dict of named groups per match."""
    text = (ROOT / path).read_text()
    found = []
    for manager in managers_for(config, path):
        for pattern in manager["matchStrings"]:
            found += [{**match.groupdict(), "manager": manager} for match in python_regex(pattern).finditer(text)]
    return found


def test_renovate_json_matches_renovates_published_schema():
    # check-jsonschema vendors the schema Renovate publishes (docs.renovatebot.com/renovate-schema.json).
    assert CHECK_JSONSCHEMA.exists(), "check-jsonschema is not installed (make test installs it)"
    result = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.renovate", str(CONFIG_FILE)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_key_is_one_renovate_knows(config):
    """The schema lets unknown top-level keys through; a misspelt option would silently do nothing."""
    (vendored,) = (ROOT / ".venv-tools").glob(
        "lib/python3*/site-packages/check_jsonschema/builtin_schemas/vendor/renovate.json"
    )
    schema = json.loads(vendored.read_text())
    known = set(schema["properties"])
    assert set(config) - {"$schema"} <= known
    for section in ("packageRules", "customManagers"):
        allowed = {
            key for part in schema["definitions"][section]["items"]["allOf"] for key in part.get("properties", {})
        }
        for item in config[section]:
            assert set(item) <= allowed, (section, set(item) - allowed)


def test_the_chart_managers_find_every_pin_with_its_version_and_repository(config):
    found = extracted(config, "constructs/burrow/pins.py")
    by_chart = {match["depName"]: match for match in found}
    assert len(found) == len(by_chart) == len(PINS)
    for pin in PINS.values():
        match = by_chart[pin.chart]
        assert match["currentValue"] == pin.version
        if pin.repository.startswith("oci://"):
            assert match["manager"]["datasourceTemplate"] == "docker"
            assert f"oci://{match['ociRepository']}" == pin.repository
        else:
            assert match["manager"]["datasourceTemplate"] == "helm"
            assert match["registryUrl"] == pin.repository


def test_a_pin_written_another_way_is_not_matched_so_the_test_above_would_fail(config, tmp_path):
    text = (ROOT / "constructs/burrow/pins.py").read_text()
    reordered = text.replace('version="2.16.1",\n', "").replace(
        'chart="keda",\n', 'chart="keda",\n    version="2.16.1",\n'
    )
    assert reordered != text
    patterns = [p for m in managers_for(config, "constructs/burrow/pins.py") for p in m["matchStrings"]]
    charts = {m["depName"] for p in patterns for m in python_regex(p).finditer(reordered)}
    assert "keda" not in charts and len(charts) == len(PINS) - 1


def test_the_eks_version_is_tracked_and_never_automerged(config):
    (match,) = extracted(config, "environments/default.yaml")
    assert (match["datasource"], match["depName"]) == ("endoflife-date", "amazon-eks")
    assert match["currentValue"] == load_environment("qa", ROOT / "environments").kubernetes.version
    rules = [r for r in config["packageRules"] if "endoflife-date" in r.get("matchDatasources", [])]
    assert rules and rules[-1]["automerge"] is False
    later = config["packageRules"][config["packageRules"].index(rules[-1]) + 1 :]
    assert not any("automerge" in rule for rule in later)
    assert config.get("automerge") is not True


def test_the_makefile_tool_pins_are_tracked(config):
    found = {
        m.get("depName") or m["manager"]["depNameTemplate"]: m["currentValue"] for m in extracted(config, "Makefile")
    }
    makefile = (ROOT / "Makefile").read_text()
    assert set(found) == {"aquasec/trivy", "pipenv"}
    assert f"TRIVY_IMAGE := aquasec/trivy:{found['aquasec/trivy']}" in makefile
    assert f"PIPENV_VERSION := {found['pipenv']}" in makefile


def test_locks_actions_and_base_images_have_their_managers(config):
    assert {"pipenv", "npm", "github-actions", "dockerfile", "custom.regex"} <= set(config["enabledManagers"])
    assert config["lockFileMaintenance"]["enabled"] is True
    assert "helpers:pinGitHubActionDigests" in config["extends"]
