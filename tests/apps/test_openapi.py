"""apps/producer/openapi.yaml against the real producer: every documented answer is produced, every
answer is documented and validates against its schema, documented headers are sent, and every
property a response schema names shows up in some answer."""

from __future__ import annotations

import json
from typing import Any

import requests
import yaml
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from tests.apps.test_batch import batch, cap
from tests.support.services import APPS, wait_until

SPEC = yaml.safe_load((APPS / "producer" / "openapi.yaml").read_text())
TOKEN = "S3cr3tT0k3n" * 4


def test_the_description_is_valid_openapi_3_1():
    validate(SPEC)
    assert SPEC["openapi"].startswith("3.1")


def resolve(node: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """A `$ref` to a component: its name and definition; any other node: (None, the node)."""
    if "$ref" not in node:
        return None, node
    *_, kind, name = node["$ref"].split("/")
    return name, SPEC["components"][kind][name]


def validator(schema: dict[str, Any]) -> OAS31Validator:
    return OAS31Validator({**schema, "components": SPEC["components"]})  # `#/components/...` resolves here


class Described:
    """Checks answers against the description and remembers what was seen."""

    def __init__(self) -> None:
        self.answers: set[tuple[str, str, str]] = set()
        self.properties: dict[str, set[str]] = {}  # component schema -> properties seen in answers

    def check(self, path: str, method: str, response: requests.Response) -> requests.Response:
        status = str(response.status_code)
        responses = SPEC["paths"][path][method]["responses"]
        assert status in responses, (
            f"{method.upper()} {path} answered {status}, which is not described: {response.text}"
        )
        described = responses[status]
        (media,) = described["content"]
        assert response.headers["Content-Type"].split(";")[0] == media, (path, status, response.headers["Content-Type"])
        schema = described["content"][media]["schema"]
        body = response.json() if media == "application/json" else response.text
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(schema).iter_errors(body)]
        assert not errors, f"{method.upper()} {path} {status}: {errors} in {response.text[:500]}"
        for name, given in described.get("headers", {}).items():
            _, header = resolve(given)
            value = response.headers.get(name)
            assert value is not None or not header.get("required"), f"{path} {status} without header {name}"
            if value is not None:
                typed = int(value) if header["schema"].get("type") == "integer" else value
                assert validator(header["schema"]).is_valid(typed), (name, value)
        self.answers.add((path, method, status))
        self._collect(schema, body)
        return response

    def _collect(self, schema: dict[str, Any], value: Any) -> None:
        """Note which properties of which component schemas the answer carries (through refs, oneOf, items)."""
        name, schema = resolve(schema)
        if "oneOf" in schema:
            for branch in schema["oneOf"]:
                if validator(branch).is_valid(value):
                    self._collect(branch, value)
        if isinstance(value, dict) and "properties" in schema:
            if name:
                self.properties.setdefault(name, set()).update(value)
            for key, sub in schema["properties"].items():
                if key in value:
                    self._collect(sub, value[key])
        if isinstance(value, list) and "items" in schema:
            for item in value:
                self._collect(schema["items"], item)


def documented_answers() -> set[tuple[str, str, str]]:
    return {
        (path, method, status)
        for path, operations in SPEC["paths"].items()
        for method, operation in operations.items()
        for status in operation["responses"]
    }


def response_schemas() -> dict[str, set[str]]:
    """Component schemas that describe answers (not requests), with their properties."""
    requests_only = {"Message", "BatchMessage", "Batch"}
    return {
        name: set(schema["properties"])
        for name, schema in SPEC["components"]["schemas"].items()
        if "properties" in schema and name not in requests_only
    }


def test_the_running_producer_answers_exactly_as_described(start, broker, topology):
    producer = start("producer", PUBLISH_RATE="0", PUBLISH_TOKEN=TOKEN, PUBLISH_WAIT_SECONDS="1")
    unreachable = start("producer", PUBLISH_RATE="0", RABBITMQ_PORT="1")
    producer.wait_ready()
    wait_until(lambda: unreachable.ready_status() == 503, 20, "a producer without a broker answering HTTP")
    described = Described()
    auth = {"Authorization": f"Bearer {TOKEN}"}

    def publish(body: bytes, content_type: str = "application/json", token: bool = True) -> requests.Response:
        return described.check(
            "/publish", "post", producer.post("/publish", body, content_type, headers=auth if token else None)
        )

    for service, path in ((producer, "/health"), (producer, "/ready"), (producer, "/metrics"), (unreachable, "/ready")):
        described.check(path, "get", service.get(path))
    assert publish(json.dumps({"payload": {"n": 1}}).encode()).status_code == 201  # the producer makes up the id
    assert publish(batch(["o-1", "o-2"])).status_code == 201
    assert publish(batch(["o-3"]), token=False).status_code == 401
    assert publish(b'{"payload": 1, "extra": 2}').status_code == 400
    assert publish(json.dumps([{"id": "o-4", "payload": 1}, {"payload": 2}]).encode()).status_code == 400
    assert publish(json.dumps([{"id": f"o-{i}", "payload": 1} for i in range(501)]).encode()).status_code == 413
    assert publish(json.dumps({"payload": "x" * (2 * 1024 * 1024)}).encode()).status_code == 413
    assert publish(batch(["o-5"]), content_type="text/plain").status_code == 415
    cap(broker, topology["RABBITMQ_QUEUE"], 5)  # the broker nacks what does not fit: 207, then 503s
    assert publish(batch([f"p-{i}" for i in range(20)])).status_code == 207
    assert publish(batch(["q-1", "q-2"])).status_code == 503
    assert publish(json.dumps({"id": "q-3", "payload": 1}).encode()).status_code == 503

    assert described.answers == documented_answers()
    for name, properties in response_schemas().items():
        assert properties <= described.properties.get(name, set()), (
            f"{name}: never answered {properties - described.properties.get(name, set())}"
        )
