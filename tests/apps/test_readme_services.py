"""The README's "run them locally" block, run exactly as printed against the test broker."""

from __future__ import annotations

from tests.support.broker import Broker
from tests.support.services import ROOT
from tests.support.shell_examples import bash_block, run_example

HEADING = "Run them locally against a broker on 127.0.0.1"


def test_the_readme_services_block_publishes_a_confirmed_message(broker: Broker, tmp_path):
    status, printed = run_example(bash_block(ROOT / "docs" / "services.md", HEADING), broker, tmp_path / "out.txt")
    assert status == 0, printed
    # curl prints the answer without a newline, between the services' JSON log lines
    assert '{"id": "hello-1", "status": "confirmed"}' in printed, printed
