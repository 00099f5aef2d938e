"""The broker side both services share: connection, topology, reconnects, readiness state.

pika connections are not thread-safe. Only the messaging thread (the main thread)
touches pika objects; the HTTP thread reads `BrokerState`, a small lock-protected
snapshot that the messaging thread publishes.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError

from burrow_service import metrics
from burrow_service.settings import Settings

log = logging.getLogger("burrow.messaging")

# Quorum queues replicate across broker nodes and are RabbitMQ 4's durable default;
# a poison message that keeps failing is dead-lettered after this many deliveries.
DELIVERY_LIMIT = 5


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str


class BrokerState:
    """What the messaging thread knows about the broker, readable from any thread."""

    def __init__(self, needs_subscription: bool) -> None:
        self._lock = threading.Lock()
        self._needs_subscription = needs_subscription
        self._connected = False
        self._subscribed = False
        self._reason = "connecting to the broker"

    def update(self, *, connected: bool, subscribed: bool = False, reason: str = "") -> None:
        with self._lock:
            self._connected, self._subscribed, self._reason = connected, subscribed, reason

    @property
    def connected(self) -> bool:
        with self._lock:
            return self._connected

    def readiness(self) -> Readiness:
        with self._lock:
            if not self._connected:
                return Readiness(False, self._reason or "broker connection is down")
            if self._needs_subscription and not self._subscribed:
                return Readiness(False, self._reason or "not subscribed to the queue")
            return Readiness(True, "")


class Backoff:
    """Bounded exponential backoff with full jitter: a uniform delay up to min(cap, base * 2**n)."""

    def __init__(self, base: float = 0.25, cap: float = 15.0) -> None:
        self.base, self.cap, self.attempt = base, cap, 0

    def next_delay(self) -> float:
        ceiling = min(self.cap, self.base * 2**self.attempt)
        self.attempt += 1
        return max(0.05, random.uniform(0, ceiling))

    def reset(self) -> None:
        self.attempt = 0


def connection_parameters(settings: Settings) -> pika.ConnectionParameters:
    return pika.ConnectionParameters(
        host=settings.host,
        port=settings.port,
        virtual_host=settings.vhost,
        credentials=pika.PlainCredentials(settings.username, settings.password),
        heartbeat=30,
        blocked_connection_timeout=60,
        connection_attempts=1,
        socket_timeout=5,
        client_properties={"connection_name": f"burrow-{settings.queue}"},
    )


def declare_topology(channel: BlockingChannel, settings: Settings) -> None:
    """Exchange, durable quorum work queue, and its dead-letter exchange and queue (idempotent)."""
    channel.exchange_declare(settings.exchange, exchange_type="direct", durable=True)
    channel.exchange_declare(settings.dead_letter_exchange, exchange_type="fanout", durable=True)
    channel.queue_declare(settings.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"})
    channel.queue_bind(settings.dead_letter_queue, settings.dead_letter_exchange)
    channel.queue_declare(
        settings.queue,
        durable=True,
        arguments={
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": settings.dead_letter_exchange,
            "x-delivery-limit": DELIVERY_LIMIT,
        },
    )
    channel.queue_bind(settings.queue, settings.exchange, routing_key=settings.routing_key)


class LaneStates:
    """The readiness of several broker connections: ready only when every one is."""

    def __init__(self, states: list[BrokerState]) -> None:
        self.states = states

    @property
    def connected(self) -> bool:
        return all(state.connected for state in self.states)

    def readiness(self) -> Readiness:
        for state in self.states:
            readiness = state.readiness()
            if not readiness.ready:
                return readiness
        return Readiness(True, "")


Session = Callable[[pika.BlockingConnection, BlockingChannel], None]


class Service(ABC):
    """A service with one broker session at a time, re-established after any failure."""

    role: str
    needs_subscription: bool = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state: BrokerState | LaneStates = BrokerState(self.needs_subscription)
        self.stopping = threading.Event()
        self.labels = {"queue": settings.queue}
        metrics.register_queue(settings.queue)

    @abstractmethod
    def run_session(self, connection: pika.BlockingConnection, channel: BlockingChannel) -> None:
        """Work until `stopping` is set (then drain) or the connection fails (raise)."""

    def run(self) -> None:
        """The messaging thread: connect, work, and reconnect with backoff until stopped."""
        assert isinstance(self.state, BrokerState)
        self.run_connection(self.state, self.run_session)

    def _publish_connected(self) -> None:
        metrics.CONNECTED.labels(**self.labels).set(1 if self.state.connected else 0)

    def run_connection(self, state: BrokerState, session: Session) -> None:
        """One broker connection, owned by the calling thread: connect, run `session`, and
        reconnect with backoff after any failure, until stopped."""
        backoff = Backoff()
        while not self.stopping.is_set():
            connection = None
            try:
                connection = pika.BlockingConnection(connection_parameters(self.settings))
                channel = connection.channel()
                declare_topology(channel, self.settings)
                backoff.reset()
                state.update(connected=True)
                self._publish_connected()
                log.info("broker connected", extra={"host": self.settings.host, "role": self.role})
                session(connection, channel)
            except (AMQPError, OSError) as exc:
                reason = f"broker unavailable: {type(exc).__name__}"
                state.update(connected=False, reason=reason)
                self._publish_connected()
                metrics.RECONNECTS.labels(**self.labels).inc()
                delay = backoff.next_delay()
                log.warning("broker connection lost", extra={"reason": reason, "retry_in": round(delay, 2)})
                self.stopping.wait(delay)
            finally:
                state.update(connected=False, reason="shutting down" if self.stopping.is_set() else "reconnecting")
                self._publish_connected()
                if connection is not None and connection.is_open:
                    with contextlib.suppress(AMQPError, OSError):
                        connection.close()
