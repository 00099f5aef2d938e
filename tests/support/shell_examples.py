"""Documentation's shell examples, run exactly as printed against the test broker."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

from tests.support.broker import Broker
from tests.support.services import ROOT


def bash_block(page: Path, after: str = "") -> str:
    """The first ```bash block of `page` (after the text `after`, when given)."""
    match = re.search(re.escape(after) + r".*?```bash\n(.*?)```", page.read_text(), re.S)
    assert match, f"{page.relative_to(ROOT)} no longer has the block" + (f" after {after!r}" if after else "")
    return match.group(1)


def run_example(block: str, broker: Broker, out: Path, timeout: float = 90) -> tuple[int, str]:
    """Run `block` with bash in the repository root; its exit status and everything it (and what it
    started) printed. The block sets host and credentials; the test broker's port and this session's
    vhost come from the environment, as they would from a user's shell. Processes the block leaves
    in the background are stopped afterwards."""
    env = {**os.environ, "RABBITMQ_PORT": str(broker.port), "RABBITMQ_VHOST": broker.vhost}
    with out.open("w") as sink:  # a file: the services the block leaves running keep writing to it
        shell = subprocess.Popen(
            ["bash", "-c", block], cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            status = shell.wait(timeout=timeout)
        finally:
            os.killpg(shell.pid, signal.SIGTERM)  # the services the block started
    return status, out.read_text()
