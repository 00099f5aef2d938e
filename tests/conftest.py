"""Shared fixtures. Every environment is synthesized once per test session (bindings are slow to import)."""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_RUNTIME_PACKAGE_CACHE", "enabled")


import json
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


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory) -> Synthesized:
    from cdktf import App

    from burrow.config.loader import load_environments
    from burrow.synth import build_app

    outdir = tmp_path_factory.mktemp("cdktf.out")
    app = App(outdir=str(outdir))
    built = build_app(app, load_environments(ROOT / "environments", list(ENVIRONMENTS)), ROOT / "helm")
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


def pytest_terminal_summary(terminalreporter) -> None:
    """The fault scenarios' id counts, so a reader sees the figures and not only a pass."""
    from tests.support.faults import RESULTS, results_table

    if RESULTS:
        terminalreporter.section("fault scenarios: ids counted")
        terminalreporter.write_line(results_table(RESULTS))
