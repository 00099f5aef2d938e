"""`make bench`: cold synth of every environment and of dev alone, against a naive baseline.

Each measurement is a fresh Python process (cold imports, as a user's `make synth` is),
run in this process tree one after another. Targets: all <= 1.3x baseline; dev <= 0.5x.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNS = int(os.environ.get("BENCH_RUNS", "3"))

BASELINE = """
import sys
from cdktf import App, TerraformStack
import cdktf_cdktf_provider_aws.provider, cdktf_cdktf_provider_kubernetes.provider, cdktf_cdktf_provider_helm.provider
app = App(outdir=sys.argv[1])
TerraformStack(app, "empty")
app.synth()
"""


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def best_of(label: str, command_for, env: dict[str, str]) -> float:
    samples = []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory() as out:
            samples.append(timed(command_for(out), {**env, "CDKTF_OUTDIR": out}))
    best = min(samples)
    print(f"{label:<22} best {best:6.2f} s   runs: {', '.join(f'{s:.2f}' for s in samples)}")
    return best


def main() -> int:
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20", "JSII_RUNTIME_PACKAGE_CACHE": "enabled",
           "BURROW_RELEASE": "tests/fixtures/release.json"}  # prod synthesizes only with a release
    python = sys.executable
    baseline = best_of("baseline (3 providers)", lambda out: [python, "-c", BASELINE, out], env)
    everything = best_of("synth all environments", lambda out: [python, "main.py"], {**env, "BURROW_ENV": ""})
    dev = best_of("synth dev alone", lambda out: [python, "main.py"], {**env, "BURROW_ENV": "dev"})
    all_ratio, dev_ratio = everything / baseline, dev / baseline
    print(f"all environments / baseline = {all_ratio:.2f}  (target <= 1.30) {'OK' if all_ratio <= 1.3 else 'MISSED'}")
    print(f"dev alone / baseline        = {dev_ratio:.2f}  (target <= 0.50) {'OK' if dev_ratio <= 0.5 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
