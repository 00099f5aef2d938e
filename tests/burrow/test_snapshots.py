"""Every stack of every environment, pinned. Review a snapshot diff like code (`pytest --snapshot-update`)."""

from __future__ import annotations

import pytest
from syrupy.extensions.json import JSONSnapshotExtension

from tests.conftest import ENVIRONMENTS

CLOUD_LAYERS = ("common", "cluster", "addons", "app")
# uat is delivered by GitOps: Flux, not a Terraform stack, applies its app layer (test_gitops).
EXPECTED_STACKS = sorted(
    ["dev-addons", "dev-app"] + [f"{env}-{layer}" for env in ENVIRONMENTS if env != "dev" for layer in CLOUD_LAYERS
                                 if (env, layer) != ("uat", "app")]
    # prod runs in two regions behind a public name: its global stack, and us-east-1's four
    + ["prod-global"] + [f"prod-us-east-1-{layer}" for layer in CLOUD_LAYERS]
)


@pytest.fixture
def json_snapshot(snapshot):
    return snapshot.use_extension(JSONSnapshotExtension)


def test_each_environment_has_exactly_its_layers(synthesized):
    assert sorted(synthesized.stacks) == EXPECTED_STACKS


@pytest.mark.parametrize("stack", EXPECTED_STACKS)
def test_stack_matches_snapshot(synthesized, json_snapshot, stack):
    assert synthesized.stack(stack) == json_snapshot


def test_output_is_free_of_machine_specific_values(synthesized):
    import json

    from tests.support.services import ROOT

    text = json.dumps(synthesized.stacks)
    assert str(ROOT) not in text
    assert str(synthesized.outdir) not in text
