"""Run a documentation page's shell example exactly as printed, and stop what it left running."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.support.services import ROOT


def run_example(block: str, env: dict[str, str], out: Path, timeout: float = 90) -> tuple[int, str]:
    """Run `block` with bash in the repository root; its exit status and everything it (and what it
    started) printed. Processes the block leaves in the background are stopped afterwards."""
    with out.open("w") as sink:  # a file: the services the block leaves running keep writing to it
        shell = subprocess.Popen(
            ["bash", "-c", block],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            status = shell.wait(timeout=timeout)
        finally:
            os.killpg(shell.pid, signal.SIGTERM)  # the services the block started
    return status, out.read_text()
