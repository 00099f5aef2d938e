"""Shared fixtures. Every environment is synthesized once per test session (bindings are slow to import)."""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_RUNTIME_PACKAGE_CACHE", "enabled")


import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.services import ROOT

ENVIRONMENTS = ("dev", "qa", "uat", "preprod", "prod")
# Environments whose app layer is a Terraform stack (`<env>-app`); uat's is delivered by GitOps.
APP_STACK_ENVIRONMENTS = ("dev", "qa", "preprod", "prod")


@dataclass
class Synthesized:
    outdir: Path
    stacks: dict[str, dict]
    built: list  # burrow.environment.EnvironmentStacks

    def stack(self, name: str) -> dict:
        return self.stacks[name]

    def objects(self, env: str, prefix: str | None = None) -> list[dict]:
        """Every object the environment delivers (a GitOps environment's app layer included); with
        `prefix` (`prod`, `prod-us-east-1`) only one region's."""
        from burrow.synth import environment_objects

        return next(environment_objects(b, prefix=prefix) for b in self.built if b.env.name == env)

    def stack_objects(self, env: str) -> list[dict]:
        """The objects the environment's Terraform stacks deliver."""
        from burrow.synth import environment_objects

        return next(environment_objects(b, include_gitops=False) for b in self.built if b.env.name == env)

    def rabbitmq_values(self, env: str) -> dict:
        """The values the environment's RabbitMQ chart renders with (whichever delivers it)."""
        from burrow.k8s.release import release_values

        return release_values(next(b for b in self.built if b.env.name == env).app.broker.release)


#: What `make release` writes (digests made up): prod synthesizes only with a release.
RELEASE_FIXTURE = ROOT / "tests" / "fixtures" / "release.json"


def released(configs: list) -> list:
    """`configs` as a deploy synthesizes them: those that need a release with the fixture's."""
    from burrow.config.release import apply_release, load_release, needs_release

    release = load_release(RELEASE_FIXTURE)
    return [apply_release(env, release) if needs_release(env) else env for env in configs]


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory) -> Synthesized:
    from cdktf import App

    from burrow.config.loader import load_environments
    from burrow.synth import build_app

    outdir = tmp_path_factory.mktemp("cdktf.out")
    app = App(outdir=str(outdir))
    built = build_app(app, released(load_environments(ROOT / "environments", list(ENVIRONMENTS))), ROOT / "helm")
    app.synth()
    from burrow.synth import export_gitops

    for environment in built:
        export_gitops(environment, outdir)
    stacks = {
        path.parent.name: json.loads(path.read_text()) for path in sorted((outdir / "stacks").glob("*/cdk.tf.json"))
    }
    return Synthesized(outdir, stacks, built)


@pytest.fixture(scope="session")
def helm(tmp_path_factory) -> str:
    """A real Helm v3 CLI, unpacked from the locked kubectl-layer package (burrow_tools.helm)."""
    from burrow_tools.helm import helm_binary, run_helm

    binary = helm_binary(tmp_path_factory.mktemp("helm"))
    assert run_helm(binary, "version", "--short").stdout.startswith("v3.")
    return binary


# --- test tiers ------------------------------------------------------------------------------------
# Every test is marked here, by what it reaches, so a new test is classified without editing a list:
# the fixtures it asks for, and what its code (its own, its module's helpers', its fixtures') refers to.
# `-m fast` (make test-fast) runs the tests that need none of these.
TIERS = {
    "broker": "starts service processes against a real RabbitMQ (fixtures broker, start, topology, cells)",
    "faults": "stops, kills or cuts off the broker (fixtures controlled, proxy)",
    "terraform": "runs a real Terraform or the AWS emulator (burrow_tools.terraform.validate/emulator)",
    "scanner": "runs a scanner from .venv-tools (checkov, check-jsonschema)",
    "helm": "runs a real Helm binary (fixture helm, burrow_tools.helm)",
    "subprocess": "starts a process: make, main.py, pip, a service with bad configuration",
}
FIXTURE_TIERS = {
    "broker": "broker",
    "start": "broker",
    "topology": "broker",
    "cells": "broker",
    "users_broker": "broker",
    "controlled": "faults",
    "proxy": "faults",
    "helm": "helm",
}
# `make test` runs tests in parallel (pytest-xdist, --dist loadgroup). Tests of one group run one after
# another on one worker: the broker tests share a node that the fault tests stop and cut off; the
# subprocess tests run make, which shares the checkout's install markers (a test that also runs
# Terraform is in this group too). Everything else, the emulator rehearsals included (each has its
# own emulator, port and folders), is spread over the workers.
XDIST_GROUPS = {"faults": "broker", "broker": "broker", "subprocess": "subprocess"}
# Under xdist, work starts in collection order: the longest chains first, so none starts last:
# the two emulator rehearsals (the longest single tests), then the two groups, then the rest.
FIRST = tuple(
    f"tests/terraform/test_terraform.py::test_aws_layers_bootstrap_apply_replan_empty_and_destroy_against_the_emulator[{env}]"
    for env in ("prod", "qa")
)


def xdist_group_of(tiers: set[str]) -> str | None:
    """The group a test with these tiers runs in (None: any worker, beside anything)."""
    return next((XDIST_GROUPS[tier] for tier in XDIST_GROUPS if tier in tiers), None)


def _start_order(item) -> int:
    if item.nodeid in FIRST:
        return 0
    group = item.get_closest_marker("xdist_group")
    if group is not None:
        return {"subprocess": 1, "broker": 2}[group.args[0]]
    return 3 if item.get_closest_marker("terraform") else 4


MODULE_TIERS = {
    "burrow_tools.terraform.validate": "terraform",
    "burrow_tools.terraform.emulator": "terraform",
    "burrow_tools.helm": "helm",
    "subprocess": "subprocess",
}


def _reached(code, namespace: dict, seen: set) -> set[str]:
    """The tiers a code object reaches: the modules its names resolve to, through the helpers of
    the test modules it calls (recursively) and the functions and lambdas nested in it."""
    import types

    if code in seen:
        return set()
    seen.add(code)
    tiers: set[str] = set()
    for name in code.co_names:
        tiers |= {tier for module, tier in MODULE_TIERS.items() if name == module or name.startswith(module + ".")}
        value = namespace.get(name)
        if value is None:
            continue
        if isinstance(value, str | Path) and ".venv-tools" in str(value):
            tiers.add("scanner")
        module = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None) or ""
        tiers |= {tier for prefix, tier in MODULE_TIERS.items() if module == prefix or module.startswith(prefix + ".")}
        target = getattr(value, "__wrapped__", value)
        if isinstance(target, types.FunctionType) and target.__module__.startswith("tests."):
            tiers |= _reached(target.__code__, target.__globals__, seen)
        elif isinstance(target, type) and target.__module__.startswith("tests."):
            for member in vars(target).values():
                if isinstance(member, types.FunctionType):
                    tiers |= _reached(member.__code__, member.__globals__, seen)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            tiers |= _reached(const, namespace, seen)
        elif isinstance(const, str) and ".venv-tools" in const:  # a scanner named by path
            tiers.add("scanner")
    return tiers


def tiers_of(item) -> set[str]:
    tiers = {FIXTURE_TIERS[name] for name in getattr(item, "fixturenames", ()) if name in FIXTURE_TIERS}
    if "faults" in tiers:
        tiers.add("broker")
    seen: set = set()
    function = getattr(item, "function", None)
    if function is not None:
        tiers |= _reached(function.__code__, function.__globals__, seen)
    for definitions in getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {}).values():
        for definition in definitions:
            func = getattr(definition.func, "__wrapped__", definition.func)
            if getattr(func, "__module__", "").startswith("tests."):
                tiers |= _reached(func.__code__, func.__globals__, seen)
    return tiers


def pytest_configure(config) -> None:
    for tier, what in TIERS.items():
        config.addinivalue_line("markers", f"{tier}: {what}")
    config.addinivalue_line("markers", "fast: needs none of the tiers above (make test-fast)")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks (its hook has no order)
def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        tiers = tiers_of(item) | {m.name for m in item.iter_markers() if m.name in TIERS}
        for tier in sorted(tiers):
            item.add_marker(tier)
        if not tiers:
            item.add_marker("fast")
        group = xdist_group_of(tiers)
        if group:
            item.add_marker(pytest.mark.xdist_group(group))
    if os.environ.get("PYTEST_XDIST_WORKER"):  # xdist workers (their order is the schedule); in-process runs keep the file order
        items.sort(key=_start_order)


# --- a per-test time limit (--test-timeout=SECONDS; make test-fast sets one) ---------------------------
def pytest_addoption(parser) -> None:
    parser.addoption(
        "--test-timeout",
        type=float,
        default=0,
        help="fail any test whose setup, call or teardown takes longer (seconds; 0: no limit)",
    )


class TestTimeout(Exception):
    pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    with _tier_known(item), _time_limit(item, "setup"):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    with _tier_known(item), _time_limit(item, "call"):
        yield


@contextmanager
def _tier_known(item):
    """A test the classifier put in the fast tier that still reaches a broker fails loudly
    (tests.support.broker reads BURROW_TEST_TIER), instead of passing by luck where one runs."""
    os.environ["BURROW_TEST_TIER"] = "fast" if item.get_closest_marker("fast") is not None else "full"
    try:
        yield
    finally:
        os.environ.pop("BURROW_TEST_TIER", None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    with _time_limit(item, "teardown"):
        yield


class _time_limit:
    """SIGALRM raises in the test's thread; should that thread be stuck where Python cannot raise,
    faulthandler dumps every thread's stack a few seconds later and ends the run."""

    def __init__(self, item, phase: str) -> None:
        self.seconds = item.config.getoption("--test-timeout")
        self.what = f"{item.nodeid} ({phase})"

    def __enter__(self) -> None:
        import faulthandler
        import signal

        if self.seconds <= 0:
            return

        def expired(_signum, _frame):
            raise TestTimeout(f"{self.what} took longer than {self.seconds:g} s (--test-timeout)")

        self.previous = signal.signal(signal.SIGALRM, expired)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        faulthandler.dump_traceback_later(self.seconds + 30, exit=True)

    def __exit__(self, *exc) -> None:
        import faulthandler
        import signal

        if self.seconds <= 0:
            return
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self.previous)
        faulthandler.cancel_dump_traceback_later()


# --- where the time goes: seconds per folder (setup + call + teardown), printed after every run ----
# (and the fault scenarios' id counts, so a reader sees the figures and not only a pass). Both come from
# the test reports, which reach this process from every pytest-xdist worker.
_FOLDER_SECONDS: dict[str, float] = {}
_FAULT_ROWS: list[tuple] = []


def pytest_runtest_logreport(report) -> None:
    path = report.nodeid.split("::", 1)[0]
    folder = "/".join(path.split("/")[:2]) if path.startswith("tests/") else path.split("/", 1)[0]
    _FOLDER_SECONDS[folder] = _FOLDER_SECONDS.get(folder, 0.0) + report.duration
    if report.when == "teardown":
        _FAULT_ROWS.extend(tuple(value) for name, value in report.user_properties if name == "fault_ledger")


def pytest_terminal_summary(terminalreporter) -> None:
    from tests.support.faults import results_table

    if _FAULT_ROWS:
        terminalreporter.section("fault scenarios: ids counted")
        terminalreporter.write_line(results_table(_FAULT_ROWS))
    if _FOLDER_SECONDS:
        terminalreporter.section("seconds per folder")
        for folder, seconds in sorted(_FOLDER_SECONDS.items(), key=lambda item: -item[1]):
            terminalreporter.write_line(f"{seconds:8.1f}  {folder}")
