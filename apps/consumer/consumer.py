"""Burrow's consumer: processes messages from a durable quorum queue, at least once.

Manual acks after processing; a message that cannot be parsed or validated is
rejected without requeue into the dead-letter queue and logged once; a message
seen before (by id) is acknowledged without being processed again.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pika  # noqa: E402
from pika.adapters.blocking_connection import BlockingChannel  # noqa: E402
from pika.spec import Basic, BasicProperties  # noqa: E402

from burrow_service import metrics  # noqa: E402
from burrow_service.message import check_id, decode_object  # noqa: E402
from burrow_service.messaging import Service  # noqa: E402
from burrow_service.runtime import main  # noqa: E402
from burrow_service.settings import Settings  # noqa: E402

log = logging.getLogger("burrow.consumer")

SEEN_IDS_KEPT = 100_000


class InvalidMessage(ValueError):
    """The message can never be processed; it belongs in the dead-letter queue."""


def parse_message(body: bytes, max_bytes: int) -> dict[str, Any]:
    """A message is a JSON object with a string `id`, an ISO 8601 `created_at` and a `payload`."""
    if len(body) > max_bytes:
        raise InvalidMessage(f"body of {len(body)} bytes exceeds {max_bytes}")
    try:
        message = decode_object(body)
        missing = [key for key in ("id", "created_at", "payload") if key not in message]
        if missing:
            raise ValueError(f"missing keys {missing}")
        check_id(message["id"])
        datetime.fromisoformat(str(message["created_at"]))
    except ValueError as exc:
        raise InvalidMessage(str(exc)) from None
    return message


class SeenIds:
    """Ids already processed: the newest `limit` in memory, optionally kept in a log file.

    What this recognises (and the README says the same): a redelivery of one of the last `limit`
    ids processed by this consumer process, or by an earlier run that wrote the same
    `PROCESSED_LOG`. In Kubernetes the log is on the pod's emptyDir, so it covers restarts of the
    container (crash, OOM kill, liveness restart), not a new pod, and never another replica.
    Each line is written and flushed before the message is acknowledged, so it survives the
    process being killed (the kernel keeps it), though not the loss of the node's disk.
    """

    def __init__(self, log_path: str | None, limit: int = SEEN_IDS_KEPT) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._limit = limit
        self._path = Path(log_path) if log_path else None
        self._file = None
        self._lines = 0
        if self._path:
            text = self._path.read_text(encoding="utf-8") if self._path.exists() else ""
            for line in text.splitlines():
                message_id = self._read_line(line)
                if message_id is not None:
                    self._remember(message_id)
                    self._lines += 1
            self._file = self._path.open("a", encoding="utf-8")
            if text and not text.endswith("\n"):
                self._file.write("\n")  # end the cut line, so the next record starts a line of its own

    @staticmethod
    def _read_line(line: str) -> str | None:
        """The id on one log line; None for a blank line or one cut short when a process was killed mid-write."""
        try:
            return json.loads(line)["id"]
        except (ValueError, KeyError, TypeError):
            return None

    def __contains__(self, message_id: str) -> bool:
        return message_id in self._ids

    def _remember(self, message_id: str) -> None:
        self._ids[message_id] = None
        if len(self._ids) > self._limit:
            self._ids.popitem(last=False)

    def record(self, message: dict[str, Any]) -> None:
        """Record that `message` was processed (flushed to the log before it is acknowledged)."""
        self._remember(message["id"])
        if self._file is not None:
            self._file.write(json.dumps({"id": message["id"], "pid": os.getpid(), "at": round(time.time(), 6)}) + "\n")
            self._file.flush()
            self._lines += 1
            if self._lines > 2 * self._limit:
                self._compact()

    def _compact(self) -> None:
        """Rewrite the log with only the ids still remembered, so it never outgrows its volume."""
        assert self._path is not None and self._file is not None
        partial = self._path.with_suffix(".compacting")
        with partial.open("w", encoding="utf-8") as out:
            for message_id in self._ids:
                out.write(json.dumps({"id": message_id}) + "\n")
            out.flush()
            os.fsync(out.fileno())
        self._file.close()
        os.replace(partial, self._path)
        self._file = self._path.open("a", encoding="utf-8")
        self._lines = len(self._ids)


class Consumer(Service):
    role = "consumer"
    needs_subscription = True

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.seen = SeenIds(settings.processed_log, settings.seen_ids)
        # Acknowledge in batches (multiple=True): one frame per batch instead of one per message.
        # Every message is processed and recorded before its batch is acknowledged.
        self.ack_batch = max(1, settings.prefetch // 2)
        self._unacked_tag: int | None = None
        self._unacked = 0
        self._consumed, self._acked, self._duplicates, self._dead = (
            m.labels(**self.labels) for m in (metrics.CONSUMED, metrics.ACKED, metrics.DUPLICATES, metrics.DEAD_LETTERED)
        )
        self._processing = metrics.PROCESSING.labels(**self.labels)

    def _ack(self, channel: BlockingChannel, tag: int) -> None:
        self._unacked_tag, self._unacked = tag, self._unacked + 1
        if self._unacked >= self.ack_batch:
            self.flush_acks(channel)

    def flush_acks(self, channel: BlockingChannel) -> None:
        """Acknowledge every processed message up to the last one."""
        if self._unacked_tag is not None:
            channel.basic_ack(self._unacked_tag, multiple=True)
            self._acked.inc(self._unacked)
            self._unacked_tag, self._unacked = None, 0

    def handle(self, channel: BlockingChannel, method: Basic.Deliver, _props: BasicProperties, body: bytes) -> None:
        if self.stopping.is_set():
            # Shutting down: take no new work; the broker hands this message to another consumer.
            channel.basic_nack(method.delivery_tag, requeue=True)
            return
        self._consumed.inc()
        try:
            message = parse_message(body, self.settings.max_message_bytes)
        except InvalidMessage as exc:
            channel.basic_reject(method.delivery_tag, requeue=False)
            self._dead.inc()
            log.warning("message dead-lettered", extra={"reason": str(exc), "bytes": len(body)})
            return
        if message["id"] in self.seen:
            self._duplicates.inc()
            self._ack(channel, method.delivery_tag)
            return
        with self._processing.time():
            self.process(message)
        self.seen.record(message)
        self._ack(channel, method.delivery_tag)

    def process(self, message: dict[str, Any]) -> None:
        """The work itself. Here: simulated work of WORK_SECONDS."""
        if self.settings.work_seconds:
            time.sleep(self.settings.work_seconds)

    def run_session(self, connection: pika.BlockingConnection, channel: BlockingChannel) -> None:
        channel.basic_qos(prefetch_count=self.settings.prefetch)
        tag = channel.basic_consume(self.settings.queue, self.handle, auto_ack=False)
        self.state.update(connected=True, subscribed=True)
        while not self.stopping.is_set():
            connection.process_data_events(time_limit=0.25)
            self.flush_acks(channel)
        # Stop taking work. The message being handled has been acked when process_data_events
        # returned; deliveries prefetched but not handled go back to the queue on cancel/close.
        self.flush_acks(channel)
        self.state.update(connected=True, subscribed=False, reason="shutting down")
        channel.basic_cancel(tag)
        channel.close()


if __name__ == "__main__":
    sys.exit(main("consumer", Consumer))
