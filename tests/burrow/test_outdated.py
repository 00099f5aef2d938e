"""`make outdated` (burrow_tools.outdated): each pin's lag behind its chart's newest release.

No chart repository is reachable here, so the releases come from a CHARTS_DIR the tests build: a
Helm repository index (the format a chart repository serves), a Git repository whose tags are
chart releases (as the fetched chart sources are), and packaged charts."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import tarfile
from datetime import UTC, date, datetime

import pytest
import yaml

from burrow.pins import PINS, ChartPin
from burrow_tools.outdated import MAX_LAG_DAYS, lags, local_releases, main
from tests.support.services import ROOT


def pin(
    chart: str, version: str, source: str = "acme/charts", tag: str = "{version}", repository: str = ""
) -> ChartPin:
    return ChartPin(
        chart=chart,
        repository=repository or "https://charts.example",
        version=version,
        source=source,
        tag=tag,
        why="test",
    )


def index_entry(chart: str, version: str, created: str) -> dict:
    return {
        "apiVersion": "v2",
        "name": chart,
        "version": version,
        "appVersion": version,
        "created": created,
        "digest": "0" * 64,
        "urls": [f"https://charts.example/{chart}-{version}.tgz"],
    }


def write_index(folder, entries: dict[str, list[tuple[str, str]]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    index = {
        "apiVersion": "v1",
        "generated": "2026-11-30T00:00:00Z",
        "entries": {chart: [index_entry(chart, v, c) for v, c in releases] for chart, releases in entries.items()},
    }
    (folder / "index.yaml").write_text(yaml.safe_dump(index))


def git(repo, *args: str, day: str | None = None) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    if day:
        env |= {"GIT_AUTHOR_DATE": f"{day}T12:00:00Z", "GIT_COMMITTER_DATE": f"{day}T12:00:00Z"}
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


def tagged_repo(path, tags: list[tuple[str, str]]) -> None:
    """A Git repository with one commit per (tag, day), each tagged (lightweight, as chart-releaser does)."""
    path.mkdir(parents=True)
    git(path, "init", "-q")
    for tag, day in tags:
        git(path, "commit", "-q", "--allow-empty", "-m", tag, day=day)
        git(path, "tag", tag)


def packaged(path, chart: str, version: str, day: str) -> None:
    data = yaml.safe_dump({"apiVersion": "v2", "name": chart, "version": version}).encode()
    member = tarfile.TarInfo(f"{chart}/Chart.yaml")
    member.size, member.mtime = len(data), datetime.fromisoformat(f"{day}T12:00:00+00:00").timestamp()
    with tarfile.open(path / f"{chart}-{version}.tgz", "w:gz") as tar:
        tar.addfile(member, io.BytesIO(data))


@pytest.fixture
def charts_dir(tmp_path):
    write_index(
        tmp_path / "index",
        {
            "keda": [
                ("2.16.1", "2024-12-24T10:00:00.123456789Z"),
                ("2.20.2", "2026-07-31T10:00:00Z"),
                ("2.16.2", "2026-08-15T10:00:00Z"),  # a late patch of the old line
                ("2.21.0-rc.1", "2026-09-01T10:00:00Z"),
            ]
        },
    )
    tagged_repo(
        tmp_path / "acme+charts" / "repo",
        [("demo-1.0.0", "2025-01-01"), ("demo-1.1.0", "2025-03-01"), ("other-9.0.0", "2025-04-01")],
    )
    tagged_repo(tmp_path / "elsewhere+charts" / "repo", [("demo-7.0.0", "2025-02-01")])  # not demo's source
    packaged(tmp_path, "tool", "0.1.0", "2025-05-01")
    packaged(tmp_path, "tool", "0.2.0", "2025-11-30")
    return tmp_path


def test_the_newest_stable_release_and_the_lag_in_days_come_from_a_repository_index(charts_dir):
    (row,) = lags([pin("keda", "2.16.1")], local_releases(charts_dir, [pin("keda", "2.16.1")]))
    assert (row.newest, row.pinned_date, row.newest_date) == ("2.20.2", date(2024, 12, 24), date(2026, 7, 31))
    assert row.days == (date(2026, 7, 31) - date(2024, 12, 24)).days == 584
    assert row.status == "LAGS"


def test_release_tags_of_the_pins_source_repository_are_releases(charts_dir):
    demo = pin("demo", "1.0.0", tag="demo-{version}")
    (row,) = lags([demo], local_releases(charts_dir, [demo]))
    assert (row.newest, row.newest_date, row.days, row.status) == ("1.1.0", date(2025, 3, 1), 59, "ok")


def test_packaged_charts_are_dated_by_their_packaging(charts_dir):
    tool = pin("tool", "0.1.0", source="acme/tool")
    (row,) = lags([tool], local_releases(charts_dir, [tool]))
    assert (row.newest, row.days) == ("0.2.0", (date(2025, 11, 30) - date(2025, 5, 1)).days)
    assert row.days > MAX_LAG_DAYS and row.status == "LAGS"


def test_the_newest_pin_has_no_lag_and_an_unknown_one_is_reported(charts_dir):
    newest, unknown = pin("demo", "1.1.0", tag="demo-{version}"), pin("demo", "1.0.5", tag="demo-{version}")
    rows = lags([newest, unknown], local_releases(charts_dir, [newest]))
    assert [(r.days, r.status) for r in rows] == [(0, "ok"), (None, "PIN NOT FOUND")]


def test_the_exit_status_fails_on_a_lag_of_more_than_183_days(charts_dir, capsys):
    assert main(["--charts-dir", str(charts_dir)], [pin("demo", "1.0.0", tag="demo-{version}")]) == 0
    assert (
        main(["--charts-dir", str(charts_dir)], [pin("keda", "2.16.1"), pin("demo", "1.1.0", tag="demo-{version}")])
        == 1
    )
    out = capsys.readouterr().out
    assert "keda   2.16.1  2024-12-24  2.20.2  2026-07-31  584         LAGS" in out
    assert "lagging: keda;" in out
    assert main(["--charts-dir", str(charts_dir)], [pin("missing", "1.0.0")]) == 2
    assert "missing  1.0.0   -         -       -         -           NOT FOUND" in capsys.readouterr().out


def test_without_a_network_it_says_so_in_one_line(capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    assert main([], [pin("keda", "2.16.1", repository=f"http://127.0.0.1:{port}/charts")]) == 2
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith(
        f"make outdated: cannot reach http://127.0.0.1:{port}/charts/index.yaml"
    )
    assert "CHARTS_DIR" in out


def test_make_outdated_reads_charts_dir_and_lists_every_pin(tmp_path):
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    write_index(tmp_path, {p.chart: [(p.version, created)] for p in PINS.values()})
    result = subprocess.run(
        ["make", "-s", "--no-print-directory", "outdated", f"CHARTS_DIR={tmp_path}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()[1 : len(PINS) + 1]] == list(PINS)
    assert f"{len(PINS)} of {len(PINS)} pins within {MAX_LAG_DAYS} days" in result.stdout


def test_every_pin_names_its_source_and_how_it_tags_releases():
    for chart_pin in PINS.values():
        assert chart_pin.source.count("/") == 1 and "{version}" in chart_pin.tag, chart_pin.chart
        assert chart_pin.repository.startswith(("https://", "oci://")) and chart_pin.why, chart_pin.chart
