"""The delivery helpers: changed environments, release pinning, PR comments."""

from __future__ import annotations

import json

import pytest

from burrow.config.loader import load_environment
from burrow.config.release import Release, apply_release, load_release, third_party_images
from burrow.errors import ConfigError
from burrow_tools.delivery.changed import changed_environments
from burrow_tools.delivery.comment import body, marker
from tests.support.services import ROOT

DIGEST = "sha256:" + "ab" * 32


def write_stack(outdir, name: str, content: dict) -> None:
    path = outdir / "stacks" / name / "cdk.tf.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(content))


def test_changed_environments_are_those_with_a_different_stack(tmp_path):
    base, head = tmp_path / "base", tmp_path / "head"
    write_stack(base, "qa-app", {"a": 1})
    write_stack(head, "qa-app", {"a": 1})
    write_stack(base, "prod-app", {"a": 1})
    write_stack(head, "prod-app", {"a": 2})
    write_stack(head, "perf-app", {"a": 1})
    assert changed_environments(base, head) == ["perf", "prod"]
    # a change in a further region's stack is a change of its environment
    write_stack(base, "uat-us-east-1-app", {"a": 1})
    write_stack(head, "uat-us-east-1-app", {"a": 2})
    assert changed_environments(base, head) == ["perf", "prod", "uat"]


BROKER_IMAGE = "docker.io/bitnamilegacy/rabbitmq:4.1.3-debian-12-r1"


def _release(third_party: dict[str, str]) -> Release:
    return Release.model_validate({
        "images": {s: {"registry": "123.dkr.ecr.eu-west-1.amazonaws.com", "repository": f"burrow/{s}", "digest": DIGEST}
                   for s in ("producer", "consumer")},
        "third_party": third_party,
    })


def test_a_release_pins_both_services_and_the_broker_by_digest():
    prod = load_environment("prod", ROOT / "environments")
    env = apply_release(prod, _release(dict.fromkeys(third_party_images(prod), DIGEST)))
    assert env.apps.producer.image.reference == f"123.dkr.ecr.eu-west-1.amazonaws.com/burrow/producer@{DIGEST}"
    assert env.apps.consumer.image.digest == DIGEST
    assert env.rabbitmq.image.reference == f"docker.io/bitnamilegacy/rabbitmq@{DIGEST}"


def test_prod_refuses_a_release_without_the_brokers_digest():
    with pytest.raises(ConfigError, match=f"prod: the release file has no third_party digest for {BROKER_IMAGE}"):
        apply_release(load_environment("prod", ROOT / "environments"), _release({}))


def test_a_prod_synth_without_a_release_file_is_refused(monkeypatch, capsys):
    from burrow.synth import main

    monkeypatch.setenv("BURROW_ENV", "prod")
    monkeypatch.delenv("BURROW_RELEASE", raising=False)
    assert main(ROOT) == 2
    error = capsys.readouterr().err
    assert "prod: production pins every image by digest, and no release file was given: set BURROW_RELEASE=" in error


def test_a_broken_release_file_is_a_clear_error(tmp_path):
    path = tmp_path / "release.json"
    path.write_text(json.dumps({"images": {"producer": {"registry": "r", "repository": "p", "digest": "latest"}}}))
    with pytest.raises(ConfigError, match="release.json: not a valid release"):
        load_release(path)
    with pytest.raises(ConfigError, match="release file not found"):
        load_release(tmp_path / "missing.json")


def test_pr_comment_starts_with_its_environment_marker_and_stays_under_the_limit():
    text = body("qa", "x" * 70000)
    assert text.startswith(marker("qa"))
    assert len(text) < 65536
    assert "cut" in text
