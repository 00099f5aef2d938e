"""The producer's publish contract in-process (fast tier): how a body is judged, who may publish,
and what each refusal answers. The HTTP routes run in Flask's test client with a stand-in for the
producer's publishing side that records what reached it; the same contract against a real broker,
through a real server, is tests/apps/test_contract.py."""

from __future__ import annotations

import io
import json
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import Flask
from producer.producer import (
    MAX_BODY_BYTES,
    REASONS,
    RETRY_AFTER,
    InvalidBatch,
    add_routes,
    authorized,
    parse_publish_body,
)
from prometheus_client import CONTENT_TYPE_LATEST

from burrow_service.messaging import BrokerState
from burrow_service.web import create_app

TOKEN = "T0k3n" * 8
MAX_MESSAGE = 256  # MAX_MESSAGE_BYTES in these tests: a message as published, id and created_at included
DEEP = 2000  # nesting levels: deeper than json.loads can recurse


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"", "not valid JSON: "),
        (b"\xff\xfe", "not valid JSON: "),
        (b"null", "must be a JSON object (one message) or a JSON list of them (a batch)"),
        (b"1", "must be a JSON object (one message) or a JSON list of them (a batch)"),
        (b'"text"', "must be a JSON object (one message) or a JSON list of them (a batch)"),
        (b"[1, 2]", "2 of 2 messages are invalid; nothing was published (first: index 0: must be a JSON object)"),
        pytest.param(b"[" * DEEP, "not valid JSON: nested too deeply", id="deep-list"),
        pytest.param(b'{"payload": ' + b"[" * DEEP + b"]" * DEEP + b"}", "not valid JSON: nested too deeply", id="deep-payload"),
        (b'{"payload": 1, "id": null}', "'id' must be a non-empty string of at most 128 characters"),
        (json.dumps({"payload": "x" * MAX_MESSAGE}).encode(), "message of "),
        (b'{"id": "a"}', "'payload' is required"),
        (b'{"payload": 1, "extra": true, "another": 2}', "unknown keys ['another', 'extra']; allowed: id, payload"),
        (b'{"payload": 1, "id": 7}', "'id' must be a non-empty string of at most 128 characters"),
        (b'{"payload": 1, "id": ""}', "'id' must be a non-empty string of at most 128 characters"),
        (json.dumps({"payload": 1, "id": "x" * 129}).encode(), "'id' must be a non-empty string of at most 128"),
    ],
)
def test_a_bad_body_is_refused_with_its_reason(body, error):
    with pytest.raises(ValueError) as refused:
        parse_publish_body(body, MAX_MESSAGE)
    assert str(refused.value).startswith(error)


def test_a_message_larger_than_max_message_bytes_as_published_is_refused():
    """The size counted is the message as published (with `created_at`), not the request body."""
    body = {"payload": "", "id": "a"}
    fits = len(json.dumps(parse_publish_body(json.dumps(body).encode(), MAX_MESSAGE)))
    body["payload"] = "x" * (MAX_MESSAGE - fits)
    assert len(json.dumps(parse_publish_body(json.dumps(body).encode(), MAX_MESSAGE))) == MAX_MESSAGE
    body["payload"] += "x"
    with pytest.raises(ValueError, match=rf"^message of {MAX_MESSAGE + 1} bytes exceeds {MAX_MESSAGE} \(MAX_MESSAGE_BYTES\)$"):
        parse_publish_body(json.dumps(body).encode(), MAX_MESSAGE)
    with pytest.raises(InvalidBatch) as batch:
        parse_publish_body(json.dumps([body]).encode(), MAX_MESSAGE)
    assert batch.value.problems == [{"index": 0, "id": "a", "error": f"message of {MAX_MESSAGE + 1} bytes exceeds {MAX_MESSAGE} (MAX_MESSAGE_BYTES)"}]


def test_a_good_body_becomes_a_message_with_its_id_or_a_new_one():
    before = datetime.now(UTC)
    message = parse_publish_body(json.dumps({"payload": {"n": 1}, "id": "x" * 128}).encode(), MAX_MESSAGE)
    assert set(message) == {"id", "created_at", "payload"}
    assert (message["id"], message["payload"]) == ("x" * 128, {"n": 1})
    assert before <= datetime.fromisoformat(message["created_at"]) <= datetime.now(UTC)
    assert parse_publish_body(b'{"payload": 1, "id": "a"}', MAX_MESSAGE)["id"] == "a"  # one character is an id
    first, second = (parse_publish_body(b'{"payload": null}', MAX_MESSAGE)["id"] for _ in range(2))
    assert uuid.UUID(first).version == 4 and first != second


@pytest.mark.parametrize(
    ("token", "header", "allowed"),
    [
        (None, "", True),
        (None, "Bearer anything", True),
        (TOKEN, f"Bearer {TOKEN}", True),
        (TOKEN, f"bearer {TOKEN}", True),
        (TOKEN, f"Bearer {TOKEN} ", True),
        (TOKEN, "", False),
        (TOKEN, "Bearer", False),
        (TOKEN, f"Bearer {TOKEN[:-1]}", False),
        (TOKEN, f"Bearer {TOKEN}x", False),
        (TOKEN, f"Basic {TOKEN}", False),
        (TOKEN, f"Token {TOKEN}", False),
        (TOKEN, f"{TOKEN}", False),
    ],
)
def test_only_the_configured_bearer_token_may_publish(token, header, allowed):
    assert authorized(SimpleNamespace(publish_token=token, publish_tokens=None), header) is allowed


class Publisher:
    """Stands in for the producer's publishing threads: records what reached them, answers `refusal`."""

    def __init__(self, token: str | None = None, refusal: str | None = None) -> None:
        self.settings = SimpleNamespace(publish_token=token, publish_tokens=None, max_message_bytes=MAX_BODY_BYTES)
        self.labels = {"queue": f"contract-{uuid.uuid4().hex[:6]}"}
        self.refusal = refusal
        self.published: list[dict] = []

    def publish_all(self, messages: list[dict]) -> list[str | None]:
        self.published.extend(messages)
        return [self.refusal] * len(messages)

    def publish_confirmed(self, message: dict) -> str | None:
        return self.publish_all([message])[0]

    def client(self):
        app = Flask("producer", root_path=str(Path(__file__).parent))
        add_routes(app, self)
        return app.test_client()


def post(publisher: Publisher, body: bytes, content_type: str = "application/json", **headers):
    return publisher.client().post("/publish", data=body, headers={"Content-Type": content_type, **headers})


def test_a_confirmed_message_is_201_with_its_id():
    publisher = Publisher()
    answer = post(publisher, b'{"id": "order-42", "payload": {"n": 1}}')
    assert (answer.status_code, answer.get_json()) == (201, {"id": "order-42", "status": "confirmed"})
    assert [m["id"] for m in publisher.published] == ["order-42"]


@pytest.mark.parametrize("refusal", sorted(RETRY_AFTER))
def test_a_message_the_broker_did_not_take_is_503_with_retry_after(refusal):
    publisher = Publisher(refusal=refusal)
    answer = post(publisher, b'{"id": "order-43", "payload": 1}')
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == str(RETRY_AFTER[refusal])
    body = answer.get_json()
    assert (body["id"], body["status"]) == ("order-43", "not accepted")
    assert body["reason"] == REASONS[refusal] and "same id" in body["retry"]


@pytest.mark.parametrize("refusal", [None, *sorted(RETRY_AFTER)])
def test_a_batch_answers_per_message_in_order(refusal):
    publisher = Publisher(refusal=refusal)
    answer = post(publisher, b'[{"id": "b", "payload": 1}, {"id": "a", "payload": 2}]')
    assert [m["id"] for m in publisher.published] == ["b", "a"]
    body = answer.get_json()
    if refusal is None:
        assert (answer.status_code, "Retry-After" in answer.headers) == (201, False)
        assert body == {"status": "confirmed", "confirmed": 2, "not_accepted": 0,
                        "results": [{"id": "b", "status": "confirmed"}, {"id": "a", "status": "confirmed"}]}
        return
    assert (answer.status_code, answer.headers["Retry-After"]) == (503, str(RETRY_AFTER[refusal]))
    assert (body["status"], body["confirmed"], body["not_accepted"], body["reason"]) == ("not accepted", 0, 2, REASONS[refusal])
    assert body["results"] == [{"id": i, "status": "not accepted", "reason": REASONS[refusal]} for i in ("b", "a")]
    assert "same ids" in body["retry"]


@pytest.mark.parametrize(
    ("body", "content_type", "headers", "status", "error"),
    [
        (b'{"payload": 1}', "text/plain", {}, 415, "Content-Type must be application/json"),
        (b'{"payload": 1}', "application/xml", {}, 415, "Content-Type must be application/json"),
        (b'{"payload": 1}', "application/csv", {}, 415, "Content-Type must be application/json"),
        (b"[not json", "application/json", {}, 400, "not valid JSON"),
        pytest.param(b"[" * DEEP, "application/json", {}, 400, "not valid JSON: nested too deeply", id="deep-batch"),
        pytest.param(b'{"payload": ' + b"[" * DEEP, "application/json", {}, 400, "not valid JSON: nested too deeply", id="deep-one"),
        (b'{"payload": 1, "id": null}', "application/json", {}, 400, "'id' must be a non-empty string"),
        (b'{"payload": 1, "x": 1}', "application/json", {}, 400, "unknown keys ['x']"),
        pytest.param(b" " * (MAX_BODY_BYTES + 1), "application/json", {}, 413, f"body exceeds {MAX_BODY_BYTES} bytes", id="1MiB+1"),
    ],
)
def test_a_refused_request_reaches_no_publisher(body, content_type, headers, status, error):
    publisher = Publisher()
    answer = post(publisher, body, content_type, **headers)
    assert answer.status_code == status
    assert list(answer.get_json()) == ["error"] and answer.get_json()["error"].startswith(error)
    assert publisher.published == []


def test_a_body_of_exactly_the_limit_is_read():
    padded = b'{"payload": 1}'.ljust(MAX_BODY_BYTES)
    publisher = Publisher()
    assert post(publisher, padded).status_code == 201


def test_without_its_token_a_public_producer_answers_401_and_publishes_nothing():
    publisher = Publisher(token=TOKEN)
    for headers in ({}, {"Authorization": f"Bearer {TOKEN}x"}):
        answer = post(publisher, b'{"payload": 1}', **headers)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="burrow"'
        assert "Authorization: Bearer <token>" in answer.get_json()["error"]
    assert publisher.published == []
    assert post(publisher, b'{"payload": 1}', Authorization=f"Bearer {TOKEN}").status_code == 201
    for path in ("/health", "/ready", "/metrics", "/publishers"):  # only /publish asks for the token
        assert publisher.client().get(path).status_code != 401, path


def test_health_is_the_process_ready_is_the_broker_and_metrics_are_prometheus_text():
    """The probes both services serve (burrow_service.web), against a real BrokerState."""
    state = BrokerState(needs_subscription=True)
    service = SimpleNamespace(role="burrow_service", state=state, stopping=threading.Event())
    client = create_app(service).test_client()

    def ready() -> tuple[int, dict]:
        answer = client.get("/ready")
        return answer.status_code, answer.get_json()

    health = client.get("/health")
    assert (health.status_code, health.mimetype, health.data) == (200, "application/json", b'{"status": "UP!"}')
    assert ready() == (503, {"status": "NOT READY", "reason": "connecting to the broker"})
    state.update(connected=True)
    assert ready() == (503, {"status": "NOT READY", "reason": "not subscribed to the queue"})
    state.update(connected=True, subscribed=True)
    assert ready() == (200, {"status": "READY"})
    state.set_blocked("memory alarm")
    assert ready() == (503, {"status": "NOT READY", "reason": "broker blocks publishers: memory alarm"})
    state.set_blocked("")
    service.stopping.set()
    assert ready() == (503, {"status": "NOT READY", "reason": "shutting down"})
    assert client.get("/health").status_code == 200  # liveness never follows the broker
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["Content-Type"] == CONTENT_TYPE_LATEST
    assert "# TYPE burrow_messages_published_total counter" in metrics.get_data(as_text=True)


@pytest.mark.parametrize(("size", "status"), [(MAX_BODY_BYTES + 1, 413), (MAX_BODY_BYTES, 400)])
def test_a_body_without_a_declared_length_is_read_up_to_the_limit_only(size, status):
    """A body whose length is not declared (a server that passes chunked bodies on) is read up to the
    limit plus one byte: one byte over is refused as too large, the limit itself is read (and judged)."""
    publisher = Publisher()
    answer = publisher.client().post(
        "/publish", input_stream=io.BytesIO(b" " * size),
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},  # the stream ends where the body does
    )
    assert answer.status_code == status, answer.get_json()
    assert publisher.published == []


class MixedPublisher(Publisher):
    """Answers each message of a batch in turn with the next of `outcomes` (None: confirmed)."""

    def __init__(self, outcomes: list[str | None]) -> None:
        super().__init__()
        self.outcomes = outcomes

    def publish_all(self, messages: list[dict]) -> list[str | None]:
        self.published.extend(messages)
        return self.outcomes[: len(messages)]


def test_a_partly_confirmed_batch_is_207_with_the_first_reason_the_longest_wait_and_each_refusal_counted():
    from prometheus_client import REGISTRY

    publisher = MixedPublisher([None, "timeout", None, "nacked"])
    answer = post(publisher, json.dumps([{"id": i, "payload": 1} for i in "abcd"]).encode())
    body = answer.get_json()
    assert (answer.status_code, answer.headers["Retry-After"]) == (207, str(RETRY_AFTER["nacked"]))
    assert (body["status"], body["confirmed"], body["not_accepted"], body["reason"]) == (
        "partly confirmed", 2, 2, REASONS["timeout"])
    assert [r["status"] for r in body["results"]] == ["confirmed", "not accepted", "confirmed", "not accepted"]
    counted = {why: REGISTRY.get_sample_value("burrow_publish_rejected_total", {**publisher.labels, "reason": why})
               for why in ("timeout", "nacked", "busy")}
    assert counted == {"timeout": 1.0, "nacked": 1.0, "busy": 0.0}


def test_a_batch_of_more_than_the_limit_is_413_and_reaches_no_publisher():
    from producer.producer import MAX_BATCH_MESSAGES

    publisher = Publisher()
    answer = post(publisher, json.dumps([{"payload": 1}] * (MAX_BATCH_MESSAGES + 1)).encode())
    assert (answer.status_code, answer.get_json()["error"]) == (
        413, f"{MAX_BATCH_MESSAGES + 1} messages exceed the limit of {MAX_BATCH_MESSAGES} per request")
    assert publisher.published == []


def test_a_declared_length_over_the_limit_is_413_before_the_content_type_is_judged():
    answer = post(Publisher(), b" " * (MAX_BODY_BYTES + 1), "text/plain")
    assert (answer.status_code, answer.get_json()) == (413, {"error": f"body exceeds {MAX_BODY_BYTES} bytes"})


def test_a_body_of_undeclared_length_is_read_no_further_than_one_byte_past_the_limit():
    stream = io.BytesIO(b" " * (MAX_BODY_BYTES + 4096))
    answer = Publisher().client().post(
        "/publish", input_stream=stream, headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True})
    assert (answer.status_code, stream.tell()) == (413, MAX_BODY_BYTES + 1)


def test_a_consumed_message_must_be_one_json_object():
    from burrow_service.message import decode_object

    assert decode_object(b'{"id": "a", "payload": 1}') == {"id": "a", "payload": 1}
    for body in (b"[]", b'"a"', b"1", b"null"):
        with pytest.raises(ValueError, match="^must be a JSON object$"):
            decode_object(body)
