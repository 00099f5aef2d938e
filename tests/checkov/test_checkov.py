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


def checkov(framework: str, files: list[Path], skip: bool) -> list[dict]:
    """Run checkov; return its failed checks (after the skip list when `skip`)."""
    assert CHECKOV.exists(), f"checkov is not installed at {CHECKOV} (make test installs it)"
    command = [str(CHECKOV), "--framework", framework, "--output", "json", "--skip-download", "--quiet"]
    for path in files:
        command += ["--file", str(path)]
    if skip:
        command += ["--skip-check", ",".join(SKIPS[framework])]
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


def describe(failed: list[dict]) -> str:
    return "\n".join(f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in failed)


@pytest.mark.parametrize("env", PRODUCTION)
def test_terraform_stacks_pass_checkov(synthesized, env):
    failed = checkov("terraform_json", stack_files(synthesized, env), skip=True)
    assert failed == [], describe(failed)


@pytest.mark.parametrize("env", PRODUCTION)
def test_kubernetes_objects_pass_checkov(object_files, env):
    failed = checkov("kubernetes", object_files[env], skip=True)
    assert failed == [], describe(failed)


def test_every_skip_is_still_needed(synthesized, object_files):
    needed = {
        "terraform_json": {c["check_id"] for c in checkov("terraform_json", stack_files(synthesized, "prod"), skip=False)},
        "kubernetes": {c["check_id"] for c in checkov("kubernetes", object_files["prod"], skip=False)},
    }
    for framework, skips in SKIPS.items():
        assert set(skips) == needed[framework], f"{framework}: skip list and failing checks differ"


def test_every_skip_has_a_reason():
    for framework, skips in SKIPS.items():
        for check, reason in skips.items():
            assert len(reason.split()) >= 12, f"{framework} {check}: give a reason a reviewer can accept"
