"""Burrow's producer: publishes JSON messages at a configured rate and on `POST /publish`.

Messages are persistent and published with confirms and `mandatory`; one that is
returned, nacked or cut off by a connection loss is retried (the consumer drops
duplicates by id), never silently dropped.
"""

from __future__ import annotations

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
OUTBOX_LIMIT = 10_000  # accepted but unpublished messages; beyond it POST /publish answers 503
PUBLISH_WAIT_SECONDS = 5.0
ALLOWED_KEYS = {"id", "payload"}


@dataclass
class Outgoing:
    """A message waiting to be confirmed; `confirmed` is set by the messaging thread."""

    message: dict[str, Any]
    confirmed: threading.Event = field(default_factory=threading.Event)


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
        self.outbox: queue.Queue[Outgoing] = queue.Queue(maxsize=OUTBOX_LIMIT)
        self.lanes = [Lane(i) for i in range(settings.publish_connections)]
        self.state = LaneStates([lane.state for lane in self.lanes])
        self._schedule = threading.Lock()
        self._next_tick = time.monotonic()
        self._published, self._confirmed, self._failed = (
            m.labels(**self.labels) for m in (metrics.PUBLISHED, metrics.CONFIRMED, metrics.PUBLISH_FAILED)
        )

    def submit(self, message: dict[str, Any]) -> Outgoing | None:
        """Hand a message to the publishing threads (safe from any thread); None when the outbox is full."""
        item = Outgoing(message)
        try:
            self.outbox.put(item, timeout=1.0)
        except queue.Full:
            return None
        return item

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
        if lane.retry is not None:
            return lane.retry
        scheduled = self._due_message()
        if scheduled is not None:
            return scheduled
        try:
            return self.outbox.get(timeout=timeout)
        except queue.Empty:
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
        """After SIGTERM: confirm what was already accepted, within the shutdown timeout."""
        deadline = time.monotonic() + self.settings.shutdown_timeout
        while time.monotonic() < deadline:
            item = lane.retry
            if item is None:
                try:
                    item = self.outbox.get_nowait()
                except queue.Empty:
                    return
            if not self._publish(channel, lane, item):
                connection.sleep(0.2)
        log.error("shutdown timeout: messages left unpublished", extra={"left": self.outbox.qsize()})


def add_routes(app: Flask, service: Producer) -> None:
    @app.post("/publish")
    def publish() -> Response:
        if service.stopping.is_set():
            return json_response({"error": "shutting down"}, 503)
        raw = request.get_data(cache=False)
        if len(raw) > MAX_BODY_BYTES:
            return json_response({"error": f"body exceeds {MAX_BODY_BYTES} bytes"}, 413)
        try:
            message = parse_publish_body(raw)
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)
        item = service.submit(message)
        if item is None:
            return json_response({"error": "too many messages waiting to be published; retry later"}, 503)
        if item.confirmed.wait(PUBLISH_WAIT_SECONDS):
            return json_response({"id": message["id"], "status": "confirmed"}, 201)
        return json_response({"id": message["id"], "status": "queued"}, 202)


if __name__ == "__main__":
    sys.exit(main("producer", Producer, add_routes))
