"""An independent scanner: checkov on every production stack and object, zero failed checks.

Every skipped check is in tests/checkov/skips.yaml with its reason; a skip that is no longer
needed fails the suite too.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.services import ROOT

SKIPS = yaml.safe_load((ROOT / "tests" / "checkov" / "skips.yaml").read_text())
CHECKOV = Path(os.environ.get("CHECKOV_BIN", ROOT / ".venv-tools" / "bin" / "checkov"))
PRODUCTION = ("preprod", "prod")


def checkov(framework: str, files: list[Path]) -> list[dict]:
    """Run checkov once over `files`, no check skipped; return its failed checks."""
    assert CHECKOV.exists(), f"checkov is not installed at {CHECKOV} (make test installs it)"
    command = [str(CHECKOV), "--framework", framework, "--output", "json", "--skip-download", "--quiet"]
    for path in files:
        command += ["--file", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, env={**os.environ, "BC_SKIP_MAPPING": "TRUE"})
    assert result.returncode in (0, 1), result.stderr[-2000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    # A file checkov cannot parse is left out of the scan without failing it: no error may hide one.
    assert sum(report.get("summary", {}).get("parsing_errors", 0) for report in reports) == 0, result.stderr[-2000:]
    return [check for report in reports for check in report.get("results", {}).get("failed_checks", [])]


def stack_files(synthesized, env: str) -> list[Path]:
    """The environment's stacks as checkov reads them: without `terraform.required_version`, a string
    that checkov 3.3's terraform_json parser takes for a block and then rejects the whole file."""
    files = []
    for path in sorted((synthesized.outdir / "stacks").glob(f"{env}-*/cdk.tf.json")):
        stack = json.loads(path.read_text())
        stack["terraform"].pop("required_version", None)
        target = synthesized.outdir / "checkov" / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(stack))
        files.append(target)
    return files


@pytest.fixture(scope="module")
def object_files(synthesized, tmp_path_factory) -> dict[str, list[Path]]:
    from burrow.synth import export_objects

    out = tmp_path_factory.mktemp("objects")
    return {b.env.name: export_objects(b, out) for b in synthesized.built}


@pytest.fixture(scope="module")
def failed(synthesized, object_files) -> dict[tuple[str, str], list[dict]]:
    """One checkov run per framework over every production file, nothing skipped; its failed checks
    by (framework, environment). Every assertion below reads these two runs."""
    files = {"terraform_json": {env: stack_files(synthesized, env) for env in PRODUCTION},
             "kubernetes": {env: object_files[env] for env in PRODUCTION}}
    found: dict[tuple[str, str], list[dict]] = {}
    for framework, by_env in files.items():
        owner = {str(path.resolve()): env for env, paths in by_env.items() for path in paths}
        checks = checkov(framework, [path for paths in by_env.values() for path in paths])
        for env in PRODUCTION:
            found[framework, env] = [c for c in checks if owner[str(Path(c["file_abs_path"]).resolve())] == env]
        assert sum(len(v) for (f, _), v in found.items() if f == framework) == len(checks)
    return found


def describe(failed: list[dict]) -> str:
    return "\n".join(f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in failed)


def not_skipped(framework: str, checks: list[dict]) -> list[dict]:
    return [c for c in checks if c["check_id"] not in SKIPS[framework]]


@pytest.mark.parametrize("env", PRODUCTION)
def test_terraform_stacks_pass_checkov(failed, env):
    left = not_skipped("terraform_json", failed["terraform_json", env])
    assert left == [], describe(left)


@pytest.mark.parametrize("env", PRODUCTION)
def test_kubernetes_objects_pass_checkov(failed, env):
    left = not_skipped("kubernetes", failed["kubernetes", env])
    assert left == [], describe(left)


def test_every_skip_is_still_needed(failed):
    for framework, skips in SKIPS.items():
        needed = {c["check_id"] for c in failed[framework, "prod"]}
        assert set(skips) == needed, f"{framework}: skip list and failing checks differ"


def test_every_skip_has_a_reason():
    for framework, skips in SKIPS.items():
        for check, reason in skips.items():
            assert len(reason.split()) >= 12, f"{framework} {check}: give a reason a reviewer can accept"
