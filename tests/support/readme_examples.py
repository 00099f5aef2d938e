"""pytest plugin (loaded with `-p` in pyproject.toml): the code blocks of README.md and docs/, which
pytest-markdown-docs runs as tests, run in an empty folder of their own, so what they write
(`cdktf.out/`) never lands in the checkout or meets another test's files."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _readme_examples_run_in_a_scratch_folder(request, tmp_path, monkeypatch) -> None:
    if request.node.get_closest_marker("markdown-docs"):
        monkeypatch.chdir(tmp_path)
