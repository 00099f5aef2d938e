"""`make outdated`: how far each chart pin (`burrow.pins`) lags the newest release of its chart.

Releases (version and date) are read from, with `--charts-dir DIR`, everything below DIR:
- Helm repository index files (`index.yaml`, what a chart repository serves:
  `entries.<chart>[].version` and `.created`);
- Git repositories (bare mirrors or clones) of a pin's `source`, recognised by `owner/name` or
  `owner+name` in their path; each tag that matches the pin's `tag` is a release, dated by its tag;
- packaged charts (`<chart>-<version>.tgz`), dated by when Helm packaged them.
Without DIR, each pin's Helm repository's `index.yaml` over HTTPS (an OCI registry serves no
index: those pins need DIR).

The newest release is the highest stable version (pre-releases are left out, so is a late patch of
an old line). The lag is the newest release's date minus the pinned release's date. Exit status: 1
when a pin lags more than `MAX_LAG_DAYS`, 2 when releases could not be looked up, else 0.

Usage: python -m burrow_tools.outdated [--charts-dir DIR]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from burrow.pins import PINS, ChartPin

MAX_LAG_DAYS = 183
STABLE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class CannotLook(Exception):
    """The releases could not be looked up at all (no network, say)."""


#: chart -> {version: release date}
Releases = dict[str, dict[str, date]]


def stable_key(version: str) -> tuple[int, int, int] | None:
    match = STABLE.match(version)
    return tuple(int(part) for part in match.groups()) if match else None  # type: ignore[return-value]


def add(releases: Releases, chart: str, version: str, when: date) -> None:
    known = releases.setdefault(chart, {})
    known[version] = min(when, known.get(version, when))


def from_index(index: dict, charts: Iterable[str], releases: Releases) -> None:
    """Releases of `charts` in a Helm repository index (`entries.<chart>[]`)."""
    entries = (index or {}).get("entries") or {}
    for chart in charts:
        for entry in entries.get(chart) or []:
            if entry.get("created"):
                add(releases, chart, str(entry["version"]), date.fromisoformat(str(entry["created"])[:10]))


def git_repositories(root: Path, depth: int = 4) -> Iterator[Path]:
    """Git repositories below `root` (bare: HEAD and objects/; a clone: .git), not looking inside them."""
    if (root / "HEAD").is_file() and (root / "objects").is_dir():
        yield root
        return
    if (root / ".git").exists():
        yield root / ".git"
        return
    if depth:
        for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
            yield from git_repositories(child, depth - 1)


def is_source_of(git_dir: Path, root: Path, pin: ChartPin) -> bool:
    where = str(git_dir.relative_to(root)).lower().replace("+", "/")
    return pin.source.lower() in where


def from_git(git_dir: Path, pin: ChartPin, releases: Releases) -> None:
    """Releases of `pin`'s chart from the tags of its source repository."""
    before, _, after = pin.tag.partition("{version}")
    pattern = re.compile(re.escape(before) + r"(?P<version>.+)" + re.escape(after) + "$")
    listing = subprocess.run(
        [
            "git",
            "--git-dir",
            str(git_dir),
            "for-each-ref",
            "--format=%(refname:strip=2) %(creatordate:short)",
            f"refs/tags/{before}*",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if listing.returncode != 0:
        raise CannotLook(f"git cannot read the tags of {git_dir}: {listing.stderr.strip()}")
    for line in listing.stdout.splitlines():
        tag, _, day = line.rpartition(" ")
        match = pattern.match(tag)
        if match and day:
            add(releases, pin.chart, match["version"], date.fromisoformat(day))


def from_package(archive: Path, charts: set[str], releases: Releases) -> None:
    with tarfile.open(archive) as tar:
        member = next((m for m in tar.getmembers() if m.name.count("/") == 1 and m.name.endswith("/Chart.yaml")), None)
        chart_file = tar.extractfile(member) if member is not None else None
        if chart_file is None:
            return
        meta = yaml.load(chart_file.read(), Loader=Loader) or {}
    if meta.get("name") in charts and member.mtime:
        add(releases, meta["name"], str(meta["version"]), date.fromtimestamp(member.mtime))


def local_releases(charts_dir: Path, pins: Iterable[ChartPin]) -> Releases:
    pins = list(pins)
    if not charts_dir.is_dir():
        raise CannotLook(f"CHARTS_DIR {charts_dir} is not a directory")
    releases: Releases = {}
    repositories = list(git_repositories(charts_dir))
    for pin in pins:
        for git_dir in repositories:
            if is_source_of(git_dir, charts_dir, pin):
                from_git(git_dir, pin, releases)
    names = {pin.chart for pin in pins}
    for index in sorted(charts_dir.rglob("index.yaml")):
        if not any(part.endswith(".git") or part == "objects" for part in index.parts):
            from_index(yaml.load(index.read_text(), Loader=Loader), names, releases)
    for archive in sorted(charts_dir.rglob("*.tgz")):
        from_package(archive, names, releases)
    return releases


def remote_releases(pins: Iterable[ChartPin], timeout: float = 20) -> tuple[Releases, list[str]]:
    """Each pin's repository index over HTTPS; (releases, pins that have no index to read)."""
    releases: Releases = {}
    skipped = []
    indexes: dict[str, dict] = {}
    for pin in pins:
        if pin.repository.startswith("oci://"):
            skipped.append(f"{pin.chart}: {pin.repository} is an OCI registry (no index); give CHARTS_DIR")
            continue
        url = f"{pin.repository.rstrip('/')}/index.yaml"
        if url not in indexes:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - the pins' https URLs
                    indexes[url] = yaml.load(response.read(), Loader=Loader) or {}
            except urllib.error.HTTPError as exc:
                skipped.append(f"{pin.chart}: {url} answered {exc.code}")
                continue
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise CannotLook(
                    f"cannot reach {url} ({reason}): no network? "
                    "Give CHARTS_DIR=<fetched chart sources or index.yaml files> to look offline"
                ) from None
        from_index(indexes[url], [pin.chart], releases)
    return releases, skipped


@dataclass(frozen=True)
class Lag:
    pin: ChartPin
    pinned_date: date | None
    newest: str | None
    newest_date: date | None

    @property
    def days(self) -> int | None:
        if self.pinned_date is None or self.newest_date is None:
            return None
        return max(0, (self.newest_date - self.pinned_date).days)

    @property
    def status(self) -> str:
        if self.newest is None:
            return "NOT FOUND"
        if self.pinned_date is None:
            return "PIN NOT FOUND"
        return "LAGS" if self.days > MAX_LAG_DAYS else "ok"  # type: ignore[operator]


def lags(pins: Iterable[ChartPin], releases: Releases) -> list[Lag]:
    found = []
    for pin in pins:
        known = releases.get(pin.chart, {})
        stable = [v for v in known if stable_key(v)]
        newest = max(stable, key=stable_key) if stable else None  # type: ignore[arg-type]
        found.append(Lag(pin, known.get(pin.version), newest, known.get(newest) if newest else None))
    return found


def table(rows: list[Lag]) -> str:
    def cell(value: object) -> str:
        return "-" if value is None else str(value)

    header = ("chart", "pinned", "released", "newest", "released", "lag (days)", "status")
    lines = [header] + [
        (r.pin.chart, r.pin.version, cell(r.pinned_date), cell(r.newest), cell(r.newest_date), cell(r.days), r.status)
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def main(argv: list[str], pins: Iterable[ChartPin] = PINS.values()) -> int:
    parser = argparse.ArgumentParser(prog="outdated")
    parser.add_argument("--charts-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    pins = list(pins)
    try:
        if args.charts_dir:
            releases, skipped = local_releases(args.charts_dir, pins), []
        else:
            releases, skipped = remote_releases(pins)
    except CannotLook as exc:
        print(f"make outdated: {exc}")
        return 2
    rows = lags(pins, releases)
    print(table(rows))
    for line in skipped:
        print(f"  {line}")
    lagging = [r for r in rows if r.status == "LAGS"]
    missing = [r for r in rows if r.status != "ok" and r not in lagging]
    print(
        f"\n{len(rows) - len(lagging) - len(missing)} of {len(rows)} pins within {MAX_LAG_DAYS} days of their newest "
        f"release; lagging: {', '.join(r.pin.chart for r in lagging) or 'none'}; "
        f"not looked up: {', '.join(r.pin.chart for r in missing) or 'none'}"
    )
    return 1 if lagging else 2 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
