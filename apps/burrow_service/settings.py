"""Settings from environment variables, the contract the app layer's Deployments fill in.

A missing or malformed variable stops the service at start with one line naming
it (exit status 2), never a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from burrow_service.tokens import TokenFiles, valid_token

T = TypeVar("T")

# Variables the Kubernetes Deployment sets for every worker (checked against the synthesized
# Deployments by Burrow's tests). Secrets come from the broker's Secret, never inline.
COMMON_VARIABLES = (
    "HTTP_PORT",
    "SHUTDOWN_TIMEOUT",
    "RABBITMQ_HOST",
    "RABBITMQ_PORT",
    "RABBITMQ_VHOST",
    "RABBITMQ_USERNAME",
    "RABBITMQ_PASSWORD",
    "RABBITMQ_EXCHANGE",
    "RABBITMQ_QUEUE",
    "RABBITMQ_ROUTING_KEY",
    "RABBITMQ_TOPOLOGY",
)
SECRET_VARIABLES = ("RABBITMQ_USERNAME", "RABBITMQ_PASSWORD", "PUBLISH_TOKEN")
#: Read when set: the producer's bearer token for POST /publish (a public producer always gets one).
OPTIONAL_VARIABLES = {"producer": ("PUBLISH_TOKEN", "PUBLISH_TOKENS_DIR"), "consumer": ()}
ROLE_VARIABLES = {"producer": ("PUBLISH_RATE",), "consumer": ("PREFETCH_COUNT", "PROCESSED_LOG")}


class SettingsError(Exception):
    """A variable is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Settings:
    http_port: int
    http_threads: int
    shutdown_timeout: float
    host: str
    port: int
    vhost: str
    username: str
    password: str
    exchange: str
    queue: str
    routing_key: str
    #: `declare`: declare the exchanges, queues and bindings at every connect (a user with configure
    #: rights); `passive`: only check that they exist (the broker declares them from its definitions).
    topology: str
    heartbeat: int
    connect_timeout: float
    handshake_timeout: float
    blocked_timeout: float
    publish_wait: float
    publish_rate: float
    publish_connections: int
    prefetch: int
    work_seconds: float
    max_message_bytes: int
    processed_log: str | None
    seen_ids: int
    #: POST /publish requires `Authorization: Bearer <publish_token>` when set.
    publish_token: str | None = None
    #: ...or for any token held by a file of this directory (a mounted Secret), re-read when it changes.
    publish_tokens: TokenFiles | None = None

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.queue}.dlx"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.queue}.dead"

    def __repr__(self) -> str:  # never print the password
        return f"Settings(host={self.host!r}, port={self.port}, queue={self.queue!r})"


def _read(env: Mapping[str, str], name: str, parse: Callable[[str], T], default: str | None, allowed: str) -> T:
    raw = env.get(name, default)
    if raw is None or raw == "":
        raise SettingsError(f"{name} is not set ({allowed})")
    try:
        return parse(raw)
    except ValueError:
        shown = "<hidden>" if name in SECRET_VARIABLES else repr(raw)
        raise SettingsError(f"{name}={shown} is invalid ({allowed})") from None


def _bounded(kind: Callable[[str], T], low: float, high: float) -> Callable[[str], T]:
    def parse(raw: str) -> T:
        value = kind(raw)
        if not low <= value <= high:  # type: ignore[operator]
            raise ValueError(raw)
        return value

    return parse


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read every setting; raise `SettingsError` naming the first bad variable."""
    env = os.environ if env is None else env
    text = str
    return Settings(
        http_port=_read(env, "HTTP_PORT", _bounded(int, 1, 65535), "5000", "a port number 1-65535"),
        http_threads=_read(env, "HTTP_THREADS", _bounded(int, 1, 64), "8", "HTTP worker threads, 1-64"),
        shutdown_timeout=_read(env, "SHUTDOWN_TIMEOUT", _bounded(float, 1, 600), "20", "seconds, 1-600"),
        host=_read(env, "RABBITMQ_HOST", text, None, "the broker's host name"),
        port=_read(env, "RABBITMQ_PORT", _bounded(int, 1, 65535), "5672", "a port number 1-65535"),
        vhost=_read(env, "RABBITMQ_VHOST", text, "/", "a virtual host name"),
        username=_read(env, "RABBITMQ_USERNAME", text, None, "the broker user"),
        password=_read(env, "RABBITMQ_PASSWORD", text, None, "the broker password"),
        exchange=_read(env, "RABBITMQ_EXCHANGE", text, "burrow.events", "an exchange name"),
        queue=_read(env, "RABBITMQ_QUEUE", text, "burrow.work", "a queue name"),
        routing_key=_read(env, "RABBITMQ_ROUTING_KEY", text, "work", "a routing key"),
        topology=_read(env, "RABBITMQ_TOPOLOGY", _one_of("declare", "passive"), "declare",
                       "declare (declare the topology) or passive (check that the broker has it)"),
        heartbeat=_read(env, "RABBITMQ_HEARTBEAT", _bounded(int, 1, 600), "10", "AMQP heartbeat timeout in seconds, 1-600"),
        connect_timeout=_read(
            env, "RABBITMQ_CONNECT_TIMEOUT", _bounded(float, 0.5, 120), "5", "seconds to open the TCP connection, 0.5-120"
        ),
        handshake_timeout=_read(
            env, "RABBITMQ_HANDSHAKE_TIMEOUT", _bounded(float, 1, 300), "10",
            "seconds for TCP connect plus the AMQP handshake, 1-300",
        ),
        blocked_timeout=_read(
            env, "RABBITMQ_BLOCKED_TIMEOUT", _bounded(float, 1, 3600), "60",
            "seconds a connection may stay blocked by a resource alarm before it is dropped, 1-3600",
        ),
        publish_wait=_read(
            env, "PUBLISH_WAIT_SECONDS", _bounded(float, 0.1, 60), "5",
            "seconds POST /publish waits for the broker's confirm, 0.1-60",
        ),
        publish_rate=_read(env, "PUBLISH_RATE", _bounded(float, 0, 100000), "1", "messages per second, 0-100000"),
        publish_connections=_read(
            env, "PUBLISH_CONNECTIONS", _bounded(int, 1, 16), "4", "broker connections publishing in parallel, 1-16"
        ),
        prefetch=_read(env, "PREFETCH_COUNT", _bounded(int, 1, 1000), "10", "an integer 1-1000"),
        work_seconds=_read(env, "WORK_SECONDS", _bounded(float, 0, 60), "0", "seconds of simulated work, 0-60"),
        max_message_bytes=_read(
            env, "MAX_MESSAGE_BYTES", _bounded(int, 128, 16 * 1024 * 1024), str(1024 * 1024), "bytes, 128-16777216"
        ),
        processed_log=env.get("PROCESSED_LOG") or None,
        seen_ids=_read(
            env, "DEDUP_WINDOW", _bounded(int, 1, 1_000_000), "100000",
            "how many of the newest processed ids are recognised as duplicates, 1-1000000",
        ),
        publish_token=_read(env, "PUBLISH_TOKEN", _token, None, "a bearer token of 32-256 letters and digits")
        if env.get("PUBLISH_TOKEN") else None,
        publish_tokens=_read(env, "PUBLISH_TOKENS_DIR", _token_files, None,
                             "a readable directory with a file holding a bearer token of 32-256 letters and digits")
        if env.get("PUBLISH_TOKENS_DIR") else None,
    )


def _one_of(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in allowed:
            raise ValueError(raw)
        return raw

    return parse


def _token(raw: str) -> str:
    if not valid_token(raw):
        raise ValueError("not a token")
    return raw


def _token_files(raw: str) -> TokenFiles:
    try:
        return TokenFiles(raw)
    except OSError as exc:
        raise ValueError(raw) from exc
