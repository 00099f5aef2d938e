"""Burrow's producer: publishes JSON messages at a configured rate and on `POST /publish`.

The publish contract: `POST /publish` answers 2xx only once the broker has confirmed the
message (persistent, routed to the durable quorum queue). When the broker is unreachable,
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
import queue
import sys
import threading
import time
import uuid
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
from burrow_service.message import check_id, decode_object  # noqa: E402
from burrow_service.messaging import BrokerState, LaneStates, Service  # noqa: E402
from burrow_service.runtime import main  # noqa: E402
from burrow_service.web import json_response  # noqa: E402

log = logging.getLogger("burrow.producer")

MAX_BODY_BYTES = 1024 * 1024
HANDOFF_LIMIT = 1_000  # requests waiting for a publishing connection; beyond it POST /publish answers 503
ALLOWED_KEYS = {"id", "payload"}
# Why a POST /publish got 503, and when to retry (seconds).
RETRY_AFTER = {"unavailable": 5, "blocked": 5, "timeout": 1, "busy": 1, "shutting_down": 1}


@dataclass
class Outgoing:
    """A message on its way to the broker.

    `confirmed` is set by a publishing thread once the broker confirmed it. `abandoned` is set by
    the HTTP thread when it stopped waiting (and answered 503): from then on nobody expects the
    message, so a publishing thread drops it instead of taking or retrying it.
    """

    message: dict[str, Any]
    requested: bool = True  # False for scheduled messages, which are retried until confirmed
    confirmed: threading.Event = field(default_factory=threading.Event)
    abandoned: bool = False


def new_message(payload: Any, message_id: str | None = None) -> dict[str, Any]:
    return {
        "id": message_id or str(uuid.uuid4()),
        "created_at": datetime.now(UTC).isoformat(),
        "payload": payload,
    }


def parse_publish_body(raw: bytes) -> dict[str, Any]:
    """Validate a `POST /publish` body: a JSON object with `payload` and an optional string `id`."""
    body = decode_object(raw)
    unknown = sorted(set(body) - ALLOWED_KEYS)
    if unknown:
        raise ValueError(f"unknown keys {unknown}; allowed: id, payload")
    if "payload" not in body:
        raise ValueError("'payload' is required")
    message_id = body.get("id")
    return new_message(body["payload"], None if message_id is None else check_id(message_id))


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
        self.handoff: queue.Queue[Outgoing] = queue.Queue(maxsize=HANDOFF_LIMIT)
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
        refused = self.unavailable()
        if refused:
            return refused
        item = Outgoing(message)
        try:
            self.handoff.put_nowait(item)
        except queue.Full:
            return "busy"
        if item.confirmed.wait(self.settings.publish_wait):
            return None
        item.abandoned = True
        # It may have been confirmed between the wait's end and now: then it is accepted.
        return None if item.confirmed.is_set() else (self.unavailable() or "timeout")

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
        return Outgoing(new_message({"source": "schedule"}), requested=False)

    def _next(self, lane: Lane, timeout: float) -> Outgoing | None:
        if lane.retry is not None and not lane.retry.abandoned:
            return lane.retry
        lane.retry = None
        if not lane.state.usable:  # blocked: leave requests to a lane that can publish
            time.sleep(timeout)
            return None
        scheduled = self._due_message()
        if scheduled is not None:
            return scheduled
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = self.handoff.get(timeout=left)
            except queue.Empty:
                return None
            if not item.abandoned:
                return item
        return None

    def _publish(self, channel: BlockingChannel, lane: Lane, item: Outgoing) -> bool:
        lane.retry = item
        self._published.inc()
        try:
            channel.basic_publish(
                self.settings.exchange,
                self.settings.routing_key,
                json.dumps(item.message).encode(),
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
            return False
        self._confirmed.inc()
        lane.retry = None
        item.confirmed.set()
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
            raise
        self._drain(connection, channel, lane)

    def _drain(self, connection: pika.BlockingConnection, channel: BlockingChannel, lane: Lane) -> None:
        """After SIGTERM: finish the requests still waiting for a confirm, within the shutdown timeout."""
        deadline = time.monotonic() + self.settings.shutdown_timeout
        while time.monotonic() < deadline:
            item = lane.retry
            if item is None or item.abandoned:
                try:
                    item = self.handoff.get_nowait()
                except queue.Empty:
                    return
                if item.abandoned:
                    continue
            if not self._publish(channel, lane, item):
                connection.sleep(0.2)


def authorized(token: str | None, header: str) -> bool:
    """True without a configured token; else only for `Bearer <token>`, compared in constant time."""
    if token is None:
        return True
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def add_routes(app: Flask, service: Producer) -> None:
    rejected = {reason: metrics.REJECTED.labels(reason=reason, **service.labels) for reason in RETRY_AFTER}

    @app.before_request
    def require_token() -> Response | None:
        """A public producer (PUBLISH_TOKEN set) publishes only for its bearer token; probes stay open."""
        if request.path != "/publish" or authorized(service.settings.publish_token, request.headers.get("Authorization", "")):
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
            message = parse_publish_body(raw)
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
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


REASONS = {
    "unavailable": "the broker is unreachable",
    "blocked": "the broker blocks publishers (memory or disk alarm)",
    "timeout": "the broker did not confirm the message in time",
    "busy": "too many requests are waiting for the broker",
    "shutting_down": "the producer is shutting down",
}


if __name__ == "__main__":
    sys.exit(main("producer", Producer, add_routes))
