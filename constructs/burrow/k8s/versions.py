"""The Kubernetes versions Amazon EKS offers, and how long each is in standard support.

Source: endoflife.date/amazon-eks, which follows the Amazon EKS Kubernetes release calendar (AWS
documentation, "Understand the Kubernetes version lifecycle on EKS"; its support dates agree). A minor version is in
standard support for 14 months after its EKS release, then in extended support (billed at an
extra USD 0.50 per cluster-hour) for 12 more; after that EKS upgrades the cluster itself.
Adding a version here is a deliberate, reviewed step: only once EKS has released it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime


@dataclass(frozen=True)
class EksVersion:
    version: str
    #: The day EKS released the version.
    released: date
    #: The first day the version is no longer in standard support (the calendar's "end of standard support").
    standard_support_ends: date
    #: The first day the version is no longer in extended support: EKS upgrades the cluster.
    extended_support_ends: date

    def support_on(self, day: date) -> str:
        """`standard`, `extended` or `ended` on `day`."""
        if day < self.standard_support_ends:
            return "standard"
        return "extended" if day < self.extended_support_ends else "ended"


EKS_VERSIONS: dict[str, EksVersion] = {
    v.version: v
    for v in (
        EksVersion("1.29", date(2024, 1, 23), date(2025, 3, 23), date(2026, 3, 23)),
        EksVersion("1.30", date(2024, 5, 23), date(2025, 7, 23), date(2026, 7, 23)),
        EksVersion("1.31", date(2024, 9, 26), date(2025, 11, 26), date(2026, 11, 26)),
        EksVersion("1.32", date(2025, 1, 25), date(2026, 3, 23), date(2027, 3, 23)),
        EksVersion("1.33", date(2025, 5, 28), date(2026, 7, 29), date(2027, 7, 29)),
        EksVersion("1.34", date(2025, 10, 6), date(2026, 12, 2), date(2027, 12, 2)),
        EksVersion("1.35", date(2026, 1, 28), date(2027, 3, 27), date(2028, 3, 27)),
    )
}


def today() -> date:
    return datetime.now(UTC).date()


def minor(version: str) -> tuple[int, int]:
    """(1, 35) for "1.35"; ValueError for anything else."""
    major, number = version.split(".")
    return int(major), int(number)


def offered_on(day: date, *, extended: bool = False) -> list[str]:
    """The versions EKS offers on `day` in standard support (and in extended support with `extended`)."""
    allowed = ("standard", "extended") if extended else ("standard",)
    return [v.version for v in EKS_VERSIONS.values() if v.support_on(day) in allowed]


def eks_version_problem(version: str, day: date, *, extended: bool = False) -> str | None:
    """Why an EKS cluster may not run `version` on `day` (None when it may): EKS must offer it, in
    standard support unless `extended` accepts extended support's cost."""
    known = EKS_VERSIONS.get(version)
    allowed = ", ".join(offered_on(day, extended=extended)) or "none"
    if known is None:
        return f"EKS does not offer Kubernetes {version}; allowed on {day}: {allowed}"
    support = known.support_on(day)
    if support == "ended":
        return f"EKS support for {version} ended on {known.extended_support_ends}; allowed on {day}: {allowed}"
    if support == "extended" and not extended:
        return (
            f"{version} left EKS standard support on {known.standard_support_ends} (extended support costs "
            f"USD 0.50 more per cluster-hour); allowed on {day}: {allowed}, or set kubernetes.extended_support: true"
        )
    return None
