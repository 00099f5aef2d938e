"""`make rotate-token ENV=…` (issue 25, finding 11), run for real against a fake `aws` on PATH that
records each call and its stdin: the new version keeps the old token as `previous`, and no token
appears on a command line or in the output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OLD, CURRENT, NEW = "0ld" * 16, "Cur" * 16, "N3w" * 16

FAKE_AWS = f"""#!{sys.executable}
import json, os, sys
args = sys.argv[1:]
stdin = sys.stdin.read() if "file:///dev/stdin" in args else None
with open(os.environ["AWS_CALLS"], "a") as log:
    log.write(json.dumps({{"args": args, "stdin": stdin}}) + "\\n")
if args[1] == "get-secret-value":
    print(json.dumps({{"publish_token": "{CURRENT}", "previous_publish_token": "{OLD}"}}))
elif args[1] == "get-random-password":
    print("{NEW}")
"""


def rotate(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "aws").write_text(FAKE_AWS)
    (bin_dir / "aws").chmod(0o755)
    calls = tmp_path / "calls.jsonl"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "AWS_CALLS": str(calls),
        "PYTHONPATH": str(ROOT / "constructs"),
    }
    result = subprocess.run(
        [sys.executable, "-m", "burrow_tools.rotate_token", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    logged = [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []
    return result, logged


def test_rotation_writes_a_new_current_token_and_keeps_the_old_one_as_previous(tmp_path):
    result, calls = rotate(tmp_path, "prod")
    assert result.returncode == 0, result.stderr
    where = ["--secret-id", "burrow/prod/producer", "--region", "eu-west-1"]
    assert [c["args"] for c in calls] == [
        ["secretsmanager", "get-secret-value", *where, "--query", "SecretString", "--output", "text"],
        [
            "secretsmanager",
            "get-random-password",
            "--password-length",
            "48",
            "--exclude-punctuation",
            "--region",
            "eu-west-1",
            "--query",
            "RandomPassword",
            "--output",
            "text",
        ],
        ["secretsmanager", "put-secret-value", *where, "--secret-string", "file:///dev/stdin"],
    ]
    assert json.loads(calls[2]["stdin"]) == {"publish_token": NEW, "previous_publish_token": CURRENT}
    assert not any(token in result.stdout + result.stderr for token in (OLD, CURRENT, NEW))
    assert "aws secretsmanager put-secret-value --secret-id burrow/prod/producer" in result.stdout


def test_a_dry_run_prints_the_calls_and_makes_none(tmp_path):
    result, calls = rotate(tmp_path, "prod", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert calls == []
    assert result.stdout.count("  aws secretsmanager ") == 3


def test_an_environment_without_a_public_token_is_refused_in_one_line(tmp_path):
    result, calls = rotate(tmp_path, "qa")
    assert (result.returncode, calls) == (2, [])
    assert result.stderr.strip() == (
        "make rotate-token: qa has no public producer with a token (ingress.enabled "
        "and ingress.authentication: token); nothing to rotate"
    )


def test_the_commands_in_docs_services_run_as_printed(tmp_path):
    """docs/services.md's rotation block, each line through make, with the fake aws on PATH."""
    page = (ROOT / "docs" / "services.md").read_text()
    block = page.split("### The publish token and its rotation", 1)[1].split("```\n", 2)[1]
    lines = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert lines == ["make rotate-token ENV=prod DRY_RUN=1", "make rotate-token ENV=prod"]
    rotate(tmp_path, "--help")  # installs the fake aws
    calls = tmp_path / "calls.jsonl"
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}", "AWS_CALLS": str(calls)}
    for line, made in zip(lines, (0, 3), strict=True):
        calls.unlink(missing_ok=True)
        result = subprocess.run(["bash", "-c", line], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr
        assert (len(calls.read_text().splitlines()) if calls.exists() else 0) == made, line
