"""Burrow's producer: publishes JSON messages at a configured rate and on `POST /publish`.

The publish contract: `POST /publish` answers 2xx only once the broker has confirmed the
message (a JSON object), or, for a batch (a JSON list of up to MAX_BATCH_MESSAGES messages), says
per message whether the broker confirmed it (persistent, routed to the durable quorum queue). When the broker is unreachable,
blocks publishers, or the confirm does not arrive within `PUBLISH_WAIT_SECONDS`, it answers
503 with `Retry-After` and keeps nothing: the client retries with the same `id`, and the
consumer recognises the duplicate if the first attempt did reach the queue after all.
The producer holds no message that a client was told is accepted, so losing the pod
(kill -9, OOM, eviction) loses nothing acknowledged.

Scheduled messages (`PUBLISH_RATE`) were promised to nobody; one that is returned, nacked or
cut off by a connection loss is retried on the next connection.
"""

from __future__ import annotations

import hmac
import json
import logging
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pika  # noqa: E402
from flask import Flask, Response, request  # noqa: E402
from pika.adapters.blocking_connection import BlockingChannel  # noqa: E402
from pika.exceptions import NackError, UnroutableError  # noqa: E402

from burrow_service import metrics  # noqa: E402
from burrow_service.message import check_id, decode_json  # noqa: E402
from burrow_service.messaging import BrokerState, LaneStates, Service  # noqa: E402
from burrow_service.runtime import main  # noqa: E402
from burrow_service.web import json_response  # noqa: E402

log = logging.getLogger("burrow.producer")

MAX_BODY_BYTES = 1024 * 1024
# Messages waiting for a publishing connection; a request whose messages do not all fit is refused
# (503 busy) before any of them is handed over. 8 HTTP threads with batches of 500 fit.
HANDOFF_LIMIT = 4_000
MAX_BATCH_MESSAGES = 500  # messages in one POST /publish list
ALLOWED_KEYS = {"id", "payload"}
# Why a POST /publish got 503, and when to retry (seconds).
# "in_flight": handed to the broker, confirm still awaited when the wait ended (it may have reached the
# queue); "nacked": the broker refused it (its own trouble: retry later).
RETRY_AFTER = {"unavailable": 5, "blocked": 5, "timeout": 1, "busy": 1, "shutting_down": 1, "in_flight": 2, "nacked": 10}

# An Outgoing's states. Every change happens under its waiter's lock, so a message is either
# abandoned while still queued (and then never published) or claimed for sending (and then its
# request learns that it may have reached the queue): never both.
QUEUED, SENDING, CONFIRMED, ABANDONED = "queued", "sending", "confirmed", "abandoned"


class Waiter:
    """One request's wait: `done` is set once every one of its `count` messages is confirmed.

    Its `lock` guards the state of the request's messages (see Outgoing).
    """

    def __init__(self, count: int) -> None:
        self.lock = threading.Lock()
        self.left = count  # messages not confirmed yet
        self.done = threading.Event()


@dataclass(eq=False)
class Outgoing:
    """A message on its way to the broker: queued -> sending -> confirmed, or queued -> abandoned.

    A publishing thread `claim`s it right before `basic_publish` (only while queued), then marks it
    `confirm`ed or `release`s it back to queued (nacked, or the connection failed) to retry it. The
    HTTP thread that stopped waiting `abandon`s it, which succeeds only while it is queued: a
    claimed message is reported as in flight instead. Scheduled messages have a waiter of their own
    nobody waits on, and are retried until confirmed.
    """

    message: dict[str, Any]
    waiter: Waiter = field(default_factory=lambda: Waiter(1))
    state: str = QUEUED
    failure: str | None = None  # why the last attempt failed ("nacked"), reported if it is abandoned

    def claim(self) -> bool:
        with self.waiter.lock:
            if self.state != QUEUED:
                return False
            self.state = SENDING
            return True

    def confirm(self) -> None:
        with self.waiter.lock:
            self.state = CONFIRMED
            self.waiter.left -= 1
            if self.waiter.left == 0:
                self.waiter.done.set()

    def release(self, failure: str | None) -> None:
        """A claimed message that was not confirmed goes back to queued (to retry, or to abandon)."""
        with self.waiter.lock:
            if self.state == SENDING:
                self.state, self.failure = QUEUED, failure

    def abandon(self) -> str:
        """Stop expecting the message if it is still queued; the state it ends in."""
        with self.waiter.lock:
            if self.state == QUEUED:
                self.state = ABANDONED
            return self.state


class Handoff:
    """Messages waiting for a publishing connection, at most `limit`, first in first out.

    A request's messages enter together or not at all, so a refused request published nothing.
    """

    def __init__(self, limit: int) -> None:
        self._items: deque[Outgoing] = deque()
        self._limit = limit
        self._ready = threading.Condition()

    def put_all(self, items: list[Outgoing]) -> bool:
        with self._ready:
            if len(self._items) + len(items) > self._limit:
                return False
            self._items.extend(items)
            self._ready.notify(len(items))
            return True

    def get(self, timeout: float = 0) -> Outgoing | None:
        """The oldest message not abandoned, waiting up to `timeout` seconds; None when there is none."""
        deadline = time.monotonic() + timeout
        with self._ready:
            while True:
                while self._items:
                    item = self._items.popleft()
                    if item.state != ABANDONED:
                        return item
                left = deadline - time.monotonic()
                if left <= 0 or not self._ready.wait(left):
                    return None


def new_message(payload: Any, message_id: str | None = None) -> dict[str, Any]:
    return {
        "id": message_id or str(uuid.uuid4()),
        "created_at": datetime.now(UTC).isoformat(),
        "payload": payload,
    }


def check_message(body: dict[str, Any], id_required: bool = False) -> dict[str, Any]:
    """One message to publish from `{"payload": ..., "id": ...}`; `ValueError` with the reason otherwise."""
    unknown = sorted(set(body) - ALLOWED_KEYS)
    if unknown:
        raise ValueError(f"unknown keys {unknown}; allowed: id, payload")
    if "payload" not in body:
        raise ValueError("'payload' is required")
    if "id" not in body and id_required:
        raise ValueError("'id' is required in a batch (the answer reports each message by its id)")
    return new_message(body["payload"], check_id(body["id"]) if "id" in body else None)


def check_size(message: dict[str, Any], max_message_bytes: int) -> dict[str, Any]:
    """The message as published is at most MAX_MESSAGE_BYTES (what the consumer accepts)."""
    size = len(encode(message))
    if size > max_message_bytes:
        raise ValueError(f"message of {size} bytes exceeds {max_message_bytes} (MAX_MESSAGE_BYTES)")
    return message


class BatchTooLarge(ValueError):
    """More messages than MAX_BATCH_MESSAGES (answered 413)."""


class InvalidBatch(ValueError):
    """Messages of a batch that cannot be published; the whole batch is refused (answered 400)."""

    def __init__(self, problems: list[dict[str, Any]], total: int) -> None:
        first = problems[0]
        super().__init__(f"{len(problems)} of {total} messages are invalid; nothing was published "
                         f"(first: index {first['index']}: {first['error']})")
        self.problems = problems


def parse_publish_body(raw: bytes, max_message_bytes: int) -> dict[str, Any] | list[dict[str, Any]]:
    """A `POST /publish` body: one message (a JSON object) or a batch (a JSON list of them).

    Raises `ValueError` (400), or its subclasses `InvalidBatch` (400, every bad message listed) and
    `BatchTooLarge` (413).
    """
    body = decode_json(raw)
    if isinstance(body, list):
        return parse_batch(body, max_message_bytes)
    if not isinstance(body, dict):
        raise ValueError("must be a JSON object (one message) or a JSON list of them (a batch)")
    return check_size(check_message(body), max_message_bytes)


def parse_batch(items: list[Any], max_message_bytes: int) -> list[dict[str, Any]]:
    """Validate every message of a batch; `InvalidBatch` lists each bad one (by index), so a client fixes all at once."""
    if not items:
        raise ValueError(f"an empty list publishes nothing; send 1-{MAX_BATCH_MESSAGES} messages")
    if len(items) > MAX_BATCH_MESSAGES:
        raise BatchTooLarge(f"{len(items)} messages exceed the limit of {MAX_BATCH_MESSAGES} per request")
    messages, problems, first_index = [], [], {}
    for index, item in enumerate(items):
        given = item.get("id") if isinstance(item, dict) else None
        try:
            if not isinstance(item, dict):
                raise ValueError("must be a JSON object")
            message = check_size(check_message(item, id_required=True), max_message_bytes)
            if message["id"] in first_index:
                raise ValueError(f"duplicate id (also at index {first_index[message['id']]})")
            first_index[message["id"]] = index
            messages.append(message)
        except ValueError as exc:
            problems.append({"index": index, "id": given if isinstance(given, str) else None, "error": str(exc)})
    if problems:
        raise InvalidBatch(problems, len(items))
    return messages


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


@dataclass
class Lane:
    """One publishing connection: its readiness, and the message a failure cut off (retried first)."""

    index: int
    state: BrokerState = field(default_factory=lambda: BrokerState(needs_subscription=False))
    retry: Outgoing | None = None


class Producer(Service):
    """Publishes over `PUBLISH_CONNECTIONS` connections in parallel, each owned by one thread.

    With publisher confirms each connection has one message in flight at a time; several
    connections keep the broker busy while each waits for its confirm.
    """

    role = "producer"

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self.handoff = Handoff(HANDOFF_LIMIT)
        self.lanes = [Lane(i) for i in range(settings.publish_connections)]
        self.state = LaneStates([lane.state for lane in self.lanes])
        self._schedule = threading.Lock()
        self._next_tick = time.monotonic()
        self._published, self._confirmed, self._failed = (
            m.labels(**self.labels) for m in (metrics.PUBLISHED, metrics.CONFIRMED, metrics.PUBLISH_FAILED)
        )
        for reason in RETRY_AFTER:
            metrics.REJECTED.labels(reason=reason, **self.labels)

    def unavailable(self) -> str | None:
        """Why no publish can be confirmed now (a key of RETRY_AFTER), or None."""
        if self.stopping.is_set():
            return "shutting_down"
        if not any(lane.state.connected for lane in self.lanes):
            return "unavailable"
        if not self.state.usable:
            return "blocked"
        return None

    def publish_confirmed(self, message: dict[str, Any]) -> str | None:
        """Publish `message` and wait for the broker's confirm (from any thread).

        Returns None once confirmed, else why not (a key of RETRY_AFTER); then the message is
        dropped, never published later on the producer's own initiative.
        """
        return self.publish_all([message])[0]

    def publish_all(self, messages: list[dict[str, Any]]) -> list[str | None]:
        """Publish `messages` and wait up to PUBLISH_WAIT_SECONDS for their confirms (from any thread).

        Per message, in order: None once confirmed, else why not (a key of RETRY_AFTER). A message
        still queued at the end of the wait is dropped, never published later on the producer's own
        initiative; one already handed to the broker is "in_flight" (it may reach the queue; the
        client's retry is then a duplicate).
        """
        refused = self.unavailable()
        if refused:
            return [refused] * len(messages)
        waiter = Waiter(len(messages))
        items = [Outgoing(message, waiter) for message in messages]
        if not self.handoff.put_all(items):
            return ["busy"] * len(messages)
        waiter.done.wait(self.settings.publish_wait)
        return self._outcomes(items)

    def _outcomes(self, items: list[Outgoing]) -> list[str | None]:
        """Abandon what is still queued; then per message None (confirmed) or why not."""
        states = [item.abandon() for item in items]
        why = None if all(state == CONFIRMED for state in states) else self.unavailable() or "timeout"
        return [None if state == CONFIRMED else "in_flight" if state == SENDING else item.failure or why
                for item, state in zip(items, states, strict=True)]

    def _due_message(self) -> Outgoing | None:
        rate = self.settings.publish_rate
        if rate <= 0 or self.stopping.is_set():
            return None
        with self._schedule:
            now = time.monotonic()
            if now < self._next_tick:
                return None
            # Never build up a burst after a pause (an outage): fall behind at most one second.
            self._next_tick = max(self._next_tick, now - 1.0) + 1.0 / rate
        return Outgoing(new_message({"source": "schedule"}))

    def _next(self, lane: Lane, timeout: float) -> Outgoing | None:
        if lane.retry is not None and lane.retry.state != ABANDONED:
            return lane.retry
        lane.retry = None
        if not lane.state.usable:  # blocked: leave requests to a lane that can publish
            time.sleep(timeout)
            return None
        return self._due_message() or self.handoff.get(timeout)

    def _publish(self, channel: BlockingChannel, lane: Lane, item: Outgoing) -> bool:
        """Publish `item` and wait for its confirm; False when the broker did not take it (retry later)."""
        if not item.claim():  # abandoned by its request meanwhile: nobody expects it any more
            lane.retry = None
            return True
        lane.retry = item
        self._published.inc()
        try:
            channel.basic_publish(
                self.settings.exchange,
                self.settings.routing_key,
                encode(item.message),
                pika.BasicProperties(
                    content_type="application/json",
                    delivery_mode=pika.DeliveryMode.Persistent,
                    message_id=item.message["id"],
                ),
                mandatory=True,
            )
        except (UnroutableError, NackError) as exc:
            self._failed.inc()
            log.warning("publish not accepted; will retry", extra={"id": item.message["id"], "reason": type(exc).__name__})
            item.release("nacked" if isinstance(exc, NackError) else None)
            return False
        self._confirmed.inc()
        lane.retry = None
        item.confirm()
        return True

    def run(self) -> None:
        """One thread per lane; this thread runs the first and waits for the others."""
        threads = [
            threading.Thread(target=self._run_lane, args=(lane,), name=f"publisher-{lane.index}", daemon=True)
            for lane in self.lanes[1:]
        ]
        for thread in threads:
            thread.start()
        self._run_lane(self.lanes[0])
        for thread in threads:
            thread.join(self.settings.shutdown_timeout + 5)

    def _run_lane(self, lane: Lane) -> None:
        self.run_connection(lane.state, lambda connection, channel: self.run_session(connection, channel, lane))

    def run_session(self, connection: pika.BlockingConnection, channel: BlockingChannel, lane: Lane) -> None:
        channel.confirm_delivery()
        try:
            while not self.stopping.is_set():
                item = self._next(lane, timeout=0.05)
                if item is None:
                    connection.process_data_events(0)
                elif not self._publish(channel, lane, item):
                    connection.sleep(0.5)
        except BaseException:
            if lane.retry is not None:
                self._failed.inc()
                lane.retry.release(None)
            raise
        self._drain(connection, channel, lane)

    def _drain(self, connection: pika.BlockingConnection, channel: BlockingChannel, lane: Lane) -> None:
        """After SIGTERM: finish the requests still waiting for a confirm, within the shutdown timeout."""
        deadline = time.monotonic() + self.settings.shutdown_timeout
        while time.monotonic() < deadline:
            item = lane.retry
            if item is None or item.state == ABANDONED:
                item = self.handoff.get()
                if item is None:
                    return
            if not self._publish(channel, lane, item):
                connection.sleep(0.2)


def authorized(settings: Any, header: str) -> bool:
    """True without a configured token; else only for `Bearer <token>` with one of the tokens
    (`PUBLISH_TOKEN`, or the files of `PUBLISH_TOKENS_DIR` as they are now), in constant time."""
    if settings.publish_token is None and settings.publish_tokens is None:
        return True
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    given = given.strip()
    static = settings.publish_token is not None and hmac.compare_digest(given.encode(), settings.publish_token.encode())
    return static or (settings.publish_tokens is not None and settings.publish_tokens.accepts(given))


def add_routes(app: Flask, service: Producer) -> None:
    rejected = {reason: metrics.REJECTED.labels(reason=reason, **service.labels) for reason in RETRY_AFTER}

    @app.before_request
    def require_token() -> Response | None:
        """A public producer (a token configured) publishes only for a bearer token; probes stay open."""
        if request.path != "/publish" or authorized(service.settings, request.headers.get("Authorization", "")):
            return None
        response = json_response({"error": "POST /publish needs the header Authorization: Bearer <token>"}, 401)
        response.headers["WWW-Authenticate"] = 'Bearer realm="burrow"'
        return response

    @app.post("/publish")
    def publish() -> Response:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return json_response({"error": f"body exceeds {MAX_BODY_BYTES} bytes"}, 413)
        if request.mimetype != "application/json":
            return json_response({"error": "Content-Type must be application/json"}, 415)
        raw = request.stream.read(MAX_BODY_BYTES + 1)
        if len(raw) > MAX_BODY_BYTES:
            return json_response({"error": f"body exceeds {MAX_BODY_BYTES} bytes"}, 413)
        try:
            parsed = parse_publish_body(raw, service.settings.max_message_bytes)
        except ValueError as exc:
            body = {"error": str(exc)}
            if isinstance(exc, InvalidBatch):
                body["invalid"] = exc.problems
            return json_response(body, 413 if isinstance(exc, BatchTooLarge) else 400)
        return publish_batch(parsed) if isinstance(parsed, list) else publish_one(parsed)

    def publish_one(message: dict[str, Any]) -> Response:
        refused = service.publish_confirmed(message)
        if refused is None:
            return json_response({"id": message["id"], "status": "confirmed"}, 201)
        rejected[refused].inc()
        response = json_response(
            {"id": message["id"], "status": "not accepted", "reason": REASONS[refused],
             "retry": "send the same id again; a duplicate is recognised by the consumer"},
            503,
        )
        response.headers["Retry-After"] = str(RETRY_AFTER[refused])
        return response

    def publish_batch(messages: list[dict[str, Any]]) -> Response:
        """201 when every message is confirmed; else 207 (some confirmed) or 503 (none), with
        `Retry-After`, and per message whether it was confirmed: the client resends exactly the rest."""
        outcomes = service.publish_all(messages)
        results = [{"id": message["id"], "status": "confirmed"} if why is None else
                   {"id": message["id"], "status": "not accepted", "reason": REASONS[why]}
                   for message, why in zip(messages, outcomes, strict=True)]
        refused = [why for why in outcomes if why is not None]
        confirmed = len(messages) - len(refused)
        if not refused:
            return json_response({"status": "confirmed", "confirmed": confirmed, "not_accepted": 0, "results": results}, 201)
        for why in set(refused):
            rejected[why].inc()
        response = json_response(
            {"status": "partly confirmed" if confirmed else "not accepted", "confirmed": confirmed,
             "not_accepted": len(refused), "reason": REASONS[refused[0]], "results": results,
             "retry": "send the messages whose status is 'not accepted' again, with the same ids; "
                      "a duplicate is recognised by the consumer"},
            207 if confirmed else 503,
        )
        response.headers["Retry-After"] = str(max(RETRY_AFTER[why] for why in refused))
        return response


REASONS = {
    "unavailable": "the broker is unreachable",
    "blocked": "the broker blocks publishers (memory or disk alarm)",
    "timeout": "the broker did not confirm the message in time",
    "busy": "too many requests are waiting for the broker",
    "shutting_down": "the producer is shutting down",
    "in_flight": "in flight: may have reached the queue (the broker had not confirmed it in time)",
    "nacked": "the broker refused the message (nack)",
}


if __name__ == "__main__":
    sys.exit(main("producer", Producer, add_routes))
