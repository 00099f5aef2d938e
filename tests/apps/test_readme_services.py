"""The README's "run them locally" block, run exactly as printed against the test broker."""

from __future__ import annotations

import os
import re
import signal
import subprocess

from tests.support.broker import Broker
from tests.support.services import ROOT

HEADING = "Run them locally against a broker on 127.0.0.1"


def readme_block() -> str:
    text = (ROOT / "docs" / "services.md").read_text()
    match = re.search(re.escape(HEADING) + r".*?```bash\n(.*?)```", text, re.S)
    assert match, "docs/services.md no longer has the block"
    return match.group(1)


def test_the_readme_services_block_publishes_a_confirmed_message(broker: Broker, tmp_path):
    # The block sets host and credentials; the test broker's port and this session's vhost come
    # from the environment, as they would from a user's shell.
    env = {**os.environ, "RABBITMQ_PORT": str(broker.port), "RABBITMQ_VHOST": broker.vhost}
    out = tmp_path / "out.txt"
    with out.open("w") as sink:  # a file: the services the block leaves running keep writing to it
        shell = subprocess.Popen(["bash", "-c", readme_block()], cwd=ROOT, env=env, stdout=sink,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        try:
            status = shell.wait(timeout=90)
        finally:
            os.killpg(shell.pid, signal.SIGTERM)  # the two services the block started
    printed = out.read_text()
    assert status == 0, printed
    # curl prints the answer without a newline, between the services' JSON log lines
    assert '{"id": "hello-1", "status": "confirmed"}' in printed, printed
