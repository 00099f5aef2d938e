"""The README's "run them locally" block, run exactly as printed against the test broker."""

from __future__ import annotations

import re

from tests.support.broker import Broker
from tests.support.services import ROOT
from tests.support.shell_examples import run_example

HEADING = "Run them locally against a broker on 127.0.0.1"


def readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(re.escape(HEADING) + r".*?```bash\n(.*?)```", text, re.S)
    assert match, "the README no longer has the block"
    return match.group(1)


def test_the_readme_services_block_publishes_a_confirmed_message(broker: Broker, tmp_path):
    # The block sets host and credentials; the test broker's port and this session's vhost come
    # from the environment, as they would from a user's shell.
    env = {"RABBITMQ_PORT": str(broker.port), "RABBITMQ_VHOST": broker.vhost}
    status, printed = run_example(readme_block(), env, tmp_path / "out.txt")
    assert status == 0, printed
    # curl prints the answer without a newline, between the services' JSON log lines
    assert '{"id": "hello-1", "status": "confirmed"}' in printed, printed
