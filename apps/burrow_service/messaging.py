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
from pika.adapters.utils.connection_workflow import AMQPConnectorException
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
        self._blocked = ""
        self._reason = "connecting to the broker"

    def update(self, *, connected: bool, subscribed: bool = False, reason: str = "") -> None:
        with self._lock:
            self._connected, self._subscribed, self._reason = connected, subscribed, reason
            if not connected:
                self._blocked = ""

    def set_blocked(self, reason: str) -> None:
        """The broker blocked (reason) or unblocked ("") this connection's publishing."""
        with self._lock:
            self._blocked = reason

    @property
    def connected(self) -> bool:
        with self._lock:
            return self._connected

    @property
    def usable(self) -> bool:
        """Connected and not blocked: a publish here can be confirmed."""
        with self._lock:
            return self._connected and not self._blocked

    def readiness(self) -> Readiness:
        with self._lock:
            if not self._connected:
                return Readiness(False, self._reason or "broker connection is down")
            if self._blocked:
                return Readiness(False, f"broker blocks publishers: {self._blocked}")
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
        # A peer that stops answering without closing the socket is found by heartbeats: pika
        # closes a connection that received nothing for heartbeat + 5 s, checked every
        # heartbeat + 5 s, so at most 2 * (heartbeat + 5) s pass before /ready turns 503.
        heartbeat=settings.heartbeat,
        # TCP connect, then TCP + AMQP handshake: a listener that accepts and never answers.
        socket_timeout=settings.connect_timeout,
        stack_timeout=settings.handshake_timeout,
        # A connection blocked by a resource alarm for longer than this is dropped and reopened.
        blocked_connection_timeout=settings.blocked_timeout,
        connection_attempts=1,
        client_properties={"connection_name": f"burrow-{settings.queue}"},
    )


def declare_topology(channel: BlockingChannel, settings: Settings) -> None:
    """Exchange, durable quorum work queue, and its dead-letter exchange and queue (idempotent).
    With `topology: passive` only check that they exist: a broker that declares them from its
    definitions gives its clients no configure permission, and a passive declare needs none."""
    if settings.topology == "passive":
        for exchange in (settings.exchange, settings.dead_letter_exchange):
            channel.exchange_declare(exchange, passive=True)
        for queue in (settings.queue, settings.dead_letter_queue):
            channel.queue_declare(queue, passive=True)
        return
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

    @property
    def usable(self) -> bool:
        return any(state.usable for state in self.states)

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

    def _blocked(self, state: BrokerState, reason: str) -> None:
        state.set_blocked(reason)
        metrics.BLOCKED.labels(**self.labels).set(1 if reason else 0)
        log.warning("broker blocks publishing" if reason else "broker unblocked publishing", extra={"reason": reason})

    def _publish_connected(self) -> None:
        metrics.CONNECTED.labels(**self.labels).set(1 if self.state.connected else 0)

    def run_connection(self, state: BrokerState, session: Session) -> None:
        """One broker connection, owned by the calling thread: connect, run `session`, and
        reconnect with backoff after any failure, until stopped."""
        backoff = Backoff()
        failure = ""
        while not self.stopping.is_set():
            connection = None
            try:
                connection = pika.BlockingConnection(connection_parameters(self.settings))
                # On the adapter underneath: BlockingConnection delivers its own callbacks only from
                # process_data_events, never while a publish waits for its confirm, which is exactly
                # when a blocked connection hangs. These run on this thread, inside pika's I/O loop.
                connection._impl.add_on_connection_blocked_callback(
                    lambda _conn, frame: self._blocked(state, frame.method.reason or "resource alarm"))
                connection._impl.add_on_connection_unblocked_callback(lambda _conn, _frame: self._blocked(state, ""))
                channel = connection.channel()
                declare_topology(channel, self.settings)
                backoff.reset()
                failure = ""
                state.update(connected=True)
                self._publish_connected()
                log.info("broker connected", extra={"host": self.settings.host, "role": self.role})
                session(connection, channel)
            # AMQPConnectorException: pika raises a handshake timeout (a listener that accepts and
            # never answers) raw from BlockingConnection(), outside its AMQPError hierarchy.
            except (AMQPError, AMQPConnectorException, OSError) as exc:
                reason = failure = f"broker unavailable: {type(exc).__name__}"
                state.update(connected=False, reason=reason)
                self._publish_connected()
                metrics.RECONNECTS.labels(**self.labels).inc()
                delay = backoff.next_delay()
                log.warning("broker connection lost", extra={"reason": reason, "retry_in": round(delay, 2)})
                self.stopping.wait(delay)
            finally:
                again = f"reconnecting to the broker (last: {failure})" if failure else "reconnecting to the broker"
                state.update(connected=False, reason="shutting down" if self.stopping.is_set() else again)
                self._publish_connected()
                if connection is not None and connection.is_open:
                    with contextlib.suppress(AMQPError, OSError):
                        connection.close()
