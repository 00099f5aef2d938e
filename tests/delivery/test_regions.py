"""Region-by-region rollouts as a user runs them: `make regions`, `make deploy ENV=… REGION=…`.

The deploy runs for real as far as this machine allows: cdktf synthesizes, selects exactly the
region's stacks and starts `terraform init`, which stops at the S3 backend for want of AWS
credentials (none here, and the test empties any configuration).
"""

from __future__ import annotations

import os
import subprocess

from burrow.config.loader import load_environment
from burrow_tools.delivery.regions import region_stacks
from tests.conftest import RELEASE_FIXTURE
from tests.support.services import ROOT

NO_AWS = {"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true"}


def make(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, env={**clean, **NO_AWS, **env},
                          capture_output=True, text=True, timeout=900)


def test_make_regions_prints_the_rollout_order():
    result = make("regions", "ENV=prod")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["eu-west-1", "us-east-1"]
    assert make("regions", "ENV=qa").stdout.split() == ["eu-west-1"]


def test_each_region_has_its_stacks_and_the_primary_the_global_one():
    prod = load_environment("prod", ROOT / "environments")
    assert region_stacks(prod, "eu-west-1") == ["prod-common", "prod-global", "prod-cluster", "prod-addons", "prod-app"]
    assert region_stacks(prod, "us-east-1") == [f"prod-us-east-1-{layer}" for layer in ("common", "cluster", "addons", "app")]
    uat = load_environment("uat", ROOT / "environments")
    assert region_stacks(uat, "eu-west-1") == ["uat-common", "uat-cluster", "uat-addons"]  # GitOps: no app stack


def test_deploying_an_unknown_region_is_one_line_and_deploys_nothing():
    result = make("deploy", "ENV=prod", "REGION=us-east-9")
    assert result.returncode == 2
    assert "burrow: environment prod has no region 'us-east-9'; its regions: eu-west-1, us-east-1" in result.stderr
    assert "cdktf deploy" not in result.stdout


def test_deploying_one_region_selects_exactly_its_stacks(tmp_path):
    result = make("deploy", "ENV=prod", "REGION=us-east-1", f"RELEASE={RELEASE_FIXTURE}", CI="true",
                  CDKTF_OUTDIR=str(tmp_path / "out"))
    printed = result.stdout + result.stderr
    stacks = " ".join(f"prod-us-east-1-{layer}" for layer in ("common", "cluster", "addons", "app"))
    assert f"npx cdktf deploy {stacks} --ignore-missing-stack-dependencies --parallelism 1 --output {tmp_path / 'out'} " \
        "--auto-approve" \
        in result.stdout
    assert "4 Stacks waiting" in printed  # the four, and nothing of eu-west-1 or prod-global
    assert "prod-us-east-1-common  " in printed and "Initializing the backend" in printed
    assert "No valid credential sources found" in printed, printed[-3000:]  # where this machine stops
    assert result.returncode != 0
    assert (tmp_path / "out" / "stacks" / "prod-us-east-1-common" / "cdk.tf.json").is_file()


def test_a_region_deploy_runs_its_stacks_one_at_a_time_in_the_printed_order(tmp_path):
    """With --ignore-missing-stack-dependencies cdktf (cli-core's `deploy`) takes the next pending stack
    in the order the stack names were given, without waiting for dependencies, and runs as many at once
    as --parallelism allows (unlimited by default). A stand-in `npx` records what make hands it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "calls"
    fake = bin_dir / "npx"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> {record}\necho --- >> {record}\n')
    fake.chmod(0o755)
    prod = load_environment("prod", ROOT / "environments")
    for region in prod.region_names:
        record.unlink(missing_ok=True)
        result = make("-o", "node_modules/.package-lock.json", "-o", ".venv/.synced", "deploy", "ENV=prod",
                      f"REGION={region}", PATH=f"{bin_dir}:{os.environ['PATH']}")
        assert result.returncode == 0, result.stderr
        calls = record.read_text().split("---\n")[:-1]
        assert len(calls) == 1
        args = calls[0].split()
        assert args[:2] == ["cdktf", "deploy"]
        assert args[args.index("--parallelism") + 1] == "1"
        assert [a for a in args[2:] if a.startswith("prod-")] == region_stacks(prod, region)


def test_smoke_of_a_region_reaches_for_that_regions_cluster():
    result = make("smoke", "ENV=prod", "REGION=us-east-1")
    assert result.returncode != 0  # no AWS credentials here
    assert ("smoke: FAILED: Command '['aws', 'eks', 'update-kubeconfig', '--name', 'burrow-prod-us-east-1', "
            "'--region', 'us-east-1'") in result.stderr
    wrong = make("smoke", "ENV=prod", "REGION=ap-south-1")
    assert "smoke: FAILED: environment prod has no region 'ap-south-1'; its regions: eu-west-1, us-east-1" in wrong.stderr


def test_the_public_health_check_waits_for_200_and_names_what_failed():
    import http.server
    import threading

    import pytest

    from burrow.errors import BurrowError
    from burrow_tools.delivery.smoke import public_health

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the handler's API
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()
            self.wfile.write(b'{"status": "ok"}')

        def log_message(self, *_args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert public_health(f"{base}/health", seconds=5) == '200 {"status": "ok"}'
        with pytest.raises(BurrowError, match=r"/publish did not answer 200 within 1 s: HTTP Error 404"):
            public_health(f"{base}/publish", seconds=1)
    finally:
        server.shutdown()
